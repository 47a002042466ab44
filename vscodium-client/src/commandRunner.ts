import * as vscode from 'vscode';

/** A command handler that logs a failure and tells the user, instead of an unhandled rejection. */
export type CommandRunner = (
  name: string,
  action: (...args: unknown[]) => unknown,
) => (...args: unknown[]) => Promise<unknown>;

export function commandRunner(log: vscode.OutputChannel): CommandRunner {
  return (name, action) =>
    async (...args: unknown[]): Promise<unknown> => {
      try {
        return await action(...args);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        log.appendLine(`${name}: ${message}`);
        void vscode.window.showErrorMessage(`Nova Collab: ${message}`);
        return undefined;
      }
    };
}
