/**
 * `kubectl mtls`: the plugin's entry (bin/kubectl-mtls runs the compiled dist/plugin/main.js). Parses the command
 * line, connects lazily, runs the verb, and turns every failure into one line on stderr with exit code 2.
 */
import "reflect-metadata";
import { checkVerb } from "./check";
import { complete, COMPLETE_COMMAND, completionVerb } from "./completion";
import { declarationVerb } from "./declaration";
import { parseCommandLine, pluginHelp, stringFlag, verbHelp, type Verb, type VerbContext } from "./command";
import { EXIT, PluginError, type ExitCode } from "./errors";
import { inspectVerb } from "./inspect";
import { Cluster, firstLine } from "./kube";
import type { Output } from "./output";
import { revokeVerb } from "./revoke";
import { rotateVerb } from "./rotate";
import { statusVerb } from "./status";

/** Every verb, in the order the help lists them; a new verb is one more entry. */
export const VERBS: readonly Verb[] = [statusVerb, declarationVerb, inspectVerb, rotateVerb, revokeVerb, checkVerb, completionVerb(() => VERBS)];

/** Runs the plugin on argv (without node and the script) and returns the exit code; never throws. */
export async function runPlugin(argv: readonly string[], out: Output, now = new Date()): Promise<ExitCode> {
  try {
    if (argv[0] === COMPLETE_COMMAND) {
      out.stdout(await complete(argv.slice(1), VERBS));
      return EXIT.ok;
    }
    const parsed = parseCommandLine(argv, VERBS);
    if (parsed.kind === "help") {
      out.stdout(parsed.verb ? verbHelp(parsed.verb) : pluginHelp(VERBS));
      return EXIT.ok;
    }
    const { invocation, verb } = parsed;
    let cluster: Cluster | undefined;
    const ctx: VerbContext = {
      cluster: () =>
        Promise.resolve(
          (cluster ??= Cluster.connect({
            kubeconfig: stringFlag(invocation, "kubeconfig"),
            context: stringFlag(invocation, "context"),
            namespace: stringFlag(invocation, "namespace"),
          })),
        ),
      out,
      now,
    };
    return await verb.run(invocation, ctx);
  } catch (err) {
    // One line, no stack: a PluginError already says what to do; anything else is shown as it came.
    const message = err instanceof PluginError ? err.message : `unexpected failure: ${firstLine(err)}`;
    out.stderr(`error: ${message.replace(/\s*\n\s*/g, " ")}\n`);
    return EXIT.error;
  }
}

/** The process: argv in, exit code out (bin/kubectl-mtls calls this). */
export async function main(): Promise<void> {
  const code = await runPlugin(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
  // Exit once stdout is flushed (a pipe may lag), without waiting for idle keep-alive sockets to close.
  process.stdout.write("", () => process.exit(code));
}

/** kubectl_complete-mtls: kubectl ≥ 1.26 runs it with the plugin's arguments, the word being completed last. */
export async function completeMain(): Promise<void> {
  process.stdout.write(await complete(process.argv.slice(2), VERBS), () => process.exit(EXIT.ok));
}

if (require.main === module) void main();
