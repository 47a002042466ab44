/**
 * The hub's host-control endpoints of one shared session (/api/sessions/<id>/...): join
 * requests and their answers, guests, the terminal's writer, the session's end. The hub
 * enforces all of it; errors carry the hub's JSON error message.
 */

export interface JoinRequest {
  readonly id: string;
  readonly name: string;
}

export interface Guest {
  readonly id: string;
  readonly name: string;
  readonly role: 'read' | 'write';
  readonly terminal: boolean;
}

export type AskAnswer =
  | { readonly status: 'open' }
  | { readonly status: 'pending'; readonly request: string; readonly key: string };

export type RequestAnswer =
  | { readonly status: 'pending' | 'refused' }
  | { readonly status: 'approved'; readonly token: string; readonly participant: string };

export class HubApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** http(s)://host:port of a ws(s):// hub URL. */
export function httpBase(hubUrl: string): string {
  return hubUrl.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/+$/, '');
}

export class SessionApi {
  private readonly base: string;

  constructor(
    hubUrl: string,
    readonly session: string,
    private readonly token: string,
  ) {
    this.base = `${httpBase(hubUrl)}/api/sessions/${encodeURIComponent(session)}`;
  }

  open(): Promise<unknown> {
    return this.call('POST', '/open', {});
  }

  async pending(): Promise<JoinRequest[]> {
    return ((await this.call('GET', '/requests')) as { requests: JoinRequest[] }).requests;
  }

  ask(name: string): Promise<AskAnswer> {
    return this.call('POST', '/requests', { name }, false) as Promise<AskAnswer>;
  }

  answer(request: string, key: string): Promise<RequestAnswer> {
    const query = new URLSearchParams({ key }).toString();
    return this.call('GET', `/requests/${encodeURIComponent(request)}?${query}`, undefined, false) as Promise<RequestAnswer>;
  }

  approve(request: string, role: 'read' | 'write'): Promise<unknown> {
    return this.call('POST', `/requests/${encodeURIComponent(request)}/approve`, { role });
  }

  refuse(request: string): Promise<unknown> {
    return this.call('POST', `/requests/${encodeURIComponent(request)}/refuse`, {});
  }

  async guests(): Promise<Guest[]> {
    return ((await this.call('GET', '/participants')) as { participants: Guest[] }).participants;
  }

  remove(participant: string): Promise<unknown> {
    return this.call('DELETE', `/participants/${encodeURIComponent(participant)}`);
  }

  setTerminalWriter(participant: string | undefined): Promise<unknown> {
    return this.call('PUT', '/terminal/writer', participant === undefined ? {} : { participant });
  }

  async terminalToken(): Promise<string> {
    return ((await this.call('POST', '/terminal/token', {})) as { token: string }).token;
  }

  end(): Promise<unknown> {
    return this.call('POST', '/end', {});
  }

  private async call(method: string, path: string, body?: unknown, authorized = true): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (authorized && this.token !== '') headers.authorization = `Bearer ${this.token}`;
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const data = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
    if (!response.ok) {
      throw new HubApiError(response.status, data.error?.code ?? 'error', data.error?.message ?? `HTTP ${response.status}`);
    }
    return data;
  }
}
