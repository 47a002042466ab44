import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { setLocalUser } from '../../src/presence';
import { sessionParticipants } from '../../src/presenceView';
import type { Session } from '../../src/session';

const made: Awareness[] = [];
let nextClient = 1000;
afterEach(() => {
  for (const awareness of made.splice(0)) awareness.destroy(); // its timer would keep node alive
});

/** A document's presence as a peer sees it: the peers' states copied into one awareness. */
function presenceOf(states: Record<string, unknown>[]): Awareness {
  const awareness = new Awareness(new Y.Doc());
  made.push(awareness);
  awareness.setLocalState(null);
  // Each document has its own client ids.
  states.forEach((state) => awareness.states.set((nextClient += 1), state));
  return awareness;
}

test('two people with one name are two participants; one person on several documents is one', () => {
  const sam1 = { user: { id: 'aaa', name: 'Sam', color: '#111111', kind: 'human' }, file: 'a.py' };
  const sam2 = { user: { id: 'bbb', name: 'Sam', color: '#222222', kind: 'human' }, file: 'b.py' };
  const presence = { awareness: presenceOf([sam1, sam2]) };
  const fileA = { connection: { awareness: presenceOf([{ user: sam1.user }, { user: { name: 'Bot', kind: 'agent' } }]) } };
  const fileB = { connection: { awareness: presenceOf([{ user: sam2.user }, { user: { name: 'Bot', kind: 'agent' } }]) } };
  const session = { presenceConnection: presence, files: new Map([['a.py', fileA], ['b.py', fileB]]) };
  const people = sessionParticipants(session as unknown as Pick<Session, 'presenceConnection' | 'files'>);
  const rows = people.map((p) => [p.name, p.file, p.key]);
  assert.deepEqual(
    rows.filter(([name]) => name === 'Sam'),
    [
      ['Sam', 'a.py', 'user:aaa'],
      ['Sam', 'b.py', 'user:bbb'],
    ],
  );
  // Agents publish no identity: one entry per client (these are two agent connections).
  assert.equal(rows.filter(([name]) => name === 'Bot').length, 2);
  assert.equal(new Set(people.map((p) => p.key)).size, people.length);
});

test('the identity the editor publishes reaches its peers', () => {
  const awareness = new Awareness(new Y.Doc());
  made.push(awareness);
  setLocalUser(awareness, { id: 'xyz', name: 'Ada', color: '#123456', kind: 'human' });
  assert.deepEqual((awareness.getLocalState() as { user: unknown }).user, { id: 'xyz', name: 'Ada', color: '#123456', kind: 'human' });
});
