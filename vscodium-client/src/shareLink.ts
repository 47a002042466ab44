/**
 * Share links and what "join" accepts. A link is a VS Code URI handled by this extension:
 *   <uri scheme>://nova-collab.nova-collab/join?hub=<ws url>&session=<id>     (a shared folder)
 *   <uri scheme>://nova-collab.nova-collab/join?hub=<ws url>&document=<name>  (one document)
 * "join" also takes a document URL (ws://host:port/<document>) or a bare document name.
 */

export const EXTENSION_ID = 'nova-collab.nova-collab';

export interface JoinTarget {
  readonly hubUrl: string;
  readonly kind: 'session' | 'document';
  readonly name: string;
}

export function shareLink(uriScheme: string, target: JoinTarget): string {
  const query = new URLSearchParams({ hub: target.hubUrl, [target.kind]: target.name });
  return `${uriScheme}://${EXTENSION_ID}/join?${query.toString()}`;
}

export function parseJoinQuery(query: string, defaultHub: string): JoinTarget | undefined {
  const params = new URLSearchParams(query);
  const hubUrl = params.get('hub') ?? defaultHub;
  const session = params.get('session');
  if (session !== null && session !== '') return { hubUrl, kind: 'session', name: session };
  const document = params.get('document');
  if (document !== null && document !== '') return { hubUrl, kind: 'document', name: document };
  return undefined;
}

export function parseJoinInput(input: string, defaultHub: string): JoinTarget | undefined {
  const text = input.trim();
  if (text === '') return undefined;
  const question = text.indexOf('?');
  if (text.includes(`://${EXTENSION_ID}/join`) && question >= 0) {
    return parseJoinQuery(text.slice(question + 1), defaultHub);
  }
  const ws = /^(wss?:\/\/[^/?#]+)\/([^?#]+)/.exec(text);
  if (ws !== null) {
    const [, hubUrl = defaultHub, path = ''] = ws;
    return { hubUrl, kind: 'document', name: decodeURIComponent(path) };
  }
  return { hubUrl: defaultHub, kind: 'document', name: text };
}

/** The URL path of a document name: each segment percent-encoded (the hub decodes it). */
export function roomPath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}
