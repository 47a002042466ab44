/**
 * The end-to-end benchmark's trace (NOVA_TRACE_LATENCY=1): when a keystroke reached the Y.Text,
 * when a remote update arrived, when the editor was asked to apply it and when it was applied.
 *
 * The extension host's console reaches the workbench's page (where the benchmark reads it) as
 * one message per line, on the channel that carries the edits to the renderer. A line per event
 * sat in front of the very edit it timed, so the events are kept here and written as one line
 * once the document has been quiet for QUIET_MS: the measurement no longer adds to what it measures.
 */
export type TraceEvent = 'local' | 'received' | 'applying' | 'remote';

export const QUIET_MS = 250;
/** Written early past this many events, so a long burst cannot grow without bound. */
export const MAX_BUFFERED = 512;

export class LatencyTrace {
  private buffered: string[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly write: (line: string) => void) {}

  record(event: TraceEvent, at: number = Date.now()): void {
    this.buffered.push(`${event}:${at}`);
    if (this.buffered.length >= MAX_BUFFERED) {
      this.flush();
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), QUIET_MS);
  }

  /** Writes what is buffered: `nova-trace-batch local:<ms> received:<ms> ...`. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffered.length === 0) return;
    const line = `nova-trace-batch ${this.buffered.join(' ')}`;
    this.buffered = [];
    this.write(line);
  }

  dispose(): void {
    this.flush();
  }
}
