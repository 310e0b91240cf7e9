/** How the plugin ends: its exit codes, and the one kind of failure it reports as a single line. */

/** Exit codes: 0 all good, 1 the answer is "not good" (something not Ready, a check failed), 2 the command failed. */
export const EXIT = { ok: 0, notReady: 1, error: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the user can act on: printed as one line `error: <message>`, exit code 2. */
export class PluginError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PluginError";
  }
}
