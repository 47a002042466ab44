import assert from 'node:assert/strict';
import { test } from 'node:test';
import { caretLook, flagPlacement } from '../../src/cursorFlag';

/** The declarations VS Code would write into the flag's ::after rule. */
function declarations(textDecoration: string): Map<string, string> {
  const entries = textDecoration
    .split(';')
    .slice(1)
    .map((part) => part.split(':').map((s) => s.trim()) as [string, string]);
  return new Map(entries);
}

test('the name flag floats over the code instead of taking inline space', () => {
  const look = caretLook('#1c7ed6', '🤖 Fixer (rules-1)', 'above');
  assert.equal(look.after.contentText, '🤖 Fixer (rules-1)');
  assert.equal(look.after.backgroundColor, '#1c7ed6');
  assert.ok(look.after.textDecoration.startsWith('none;'), 'the underline stays off');
  const css = declarations(look.after.textDecoration);
  assert.equal(css.get('position'), 'absolute');
  assert.equal(css.get('pointer-events'), 'none');
  assert.match(css.get('top') ?? '', /^-/);
  assert.equal(look.borderWidth, '0 0 0 2px');
  // No margin or padding outside the flag: nothing that could widen the line.
  assert.ok(!('margin' in look.after));
});

test('on the first line the flag hangs below the caret (above would be clipped)', () => {
  assert.equal(flagPlacement(0), 'below');
  assert.equal(flagPlacement(3), 'above');
  const below = declarations(caretLook('#d9480f', 'Host', 'below').after.textDecoration);
  assert.doesNotMatch(below.get('top') ?? '', /^-/);
});
