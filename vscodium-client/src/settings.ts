/** The extension's settings ("nova.*"), read fresh each time a session starts. */
import * as os from 'node:os';
import * as vscode from 'vscode';
import type { LocalUser } from './presence';

export interface Settings {
  readonly hubUrl: string;
  readonly token: string;
  readonly user: LocalUser;
  /** Log a timestamp per keystroke sent and per remote edit shown (the e2e latency breakdown). */
  readonly traceLatency?: boolean;
}

const PALETTE = ['#e5534b', '#3b82f6', '#22a06b', '#a855f7', '#d97706', '#0891b2', '#db2777'];

export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration('nova');
  const name = config.get<string>('displayName', '').trim() || safeUserName();
  const configured = config.get<string>('color', '').trim();
  const color = /^#[0-9a-fA-F]{6}$/.test(configured)
    ? configured
    : (PALETTE[Math.floor(Math.random() * PALETTE.length)] ?? '#3b82f6');
  return {
    hubUrl: config.get<string>('hubUrl', 'ws://127.0.0.1:1234').trim().replace(/\/+$/, ''),
    token: config.get<string>('token', '').trim(),
    // A new identity per session start: the participants view tells same-name people apart.
    user: { id: randomUserId(), name, color, kind: 'human' },
    // An environment switch, not a setting: only the end-to-end benchmark turns it on.
    traceLatency: process.env.NOVA_TRACE_LATENCY === '1',
  };
}

function randomUserId(): string {
  return Math.random().toString(36).slice(2, 12);
}

function safeUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'guest';
  }
}
