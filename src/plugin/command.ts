/**
 * The plugin's command line, pure: the flags every verb shares, the shape of a verb, and splitting argv into the
 * verb and its parsed flags. A new verb (rotate, revoke, check…) is one module exporting a `Verb` and one entry in
 * main.ts's list; nothing here changes.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { DurationError, formatDuration, parseDuration } from "../api/duration";
import type { Cluster } from "./kube";
import { PluginError, type ExitCode } from "./errors";
import type { Output } from "./output";

/** The flags of every verb (kubectl's names, so muscle memory works). */
export const COMMON_OPTIONS = {
  kubeconfig: { type: "string" },
  context: { type: "string" },
  namespace: { type: "string", short: "n" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

export const COMMON_HELP = `Flags every command takes:
  -n, --namespace NS      the namespace (default: the kubeconfig context's, else "default")
      --kubeconfig PATH   the kubeconfig (default: $KUBECONFIG, else ~/.kube/config)
      --context NAME      the kubeconfig context (default: its current-context)
  -h, --help              this help
`;

export type FlagValue = string | boolean | undefined;

export interface Invocation {
  /** The verb's flags, by long name. */
  readonly flags: Readonly<Record<string, FlagValue>>;
  readonly positionals: readonly string[];
}

/** What a verb gets to work with: the cluster (connected on first use, so --help and usage errors need none), output, the clock. */
export interface VerbContext {
  cluster(): Promise<Cluster>;
  readonly out: Output;
  readonly now: Date;
}

/** What a word completes to (shell completion): object names of kinds (`sdb/…`, `imc/…`), namespaces, or fixed words. */
export type Completion = { readonly kinds: readonly ("sdb" | "imc")[] } | { readonly words: readonly string[] } | "namespaces";

export interface Verb {
  readonly name: string;
  /** One line for the plugin's help. */
  readonly summary: string;
  /** The verb's own help, without the common flags. */
  readonly help: string;
  /** Flags besides COMMON_OPTIONS. */
  readonly options: ParseArgsOptionsConfig;
  /** What its positional arguments complete to; flag values that complete, by long flag name. */
  readonly completes?: { readonly arguments?: Completion; readonly flags?: Readonly<Record<string, Completion>> };
  run(invocation: Invocation, ctx: VerbContext): Promise<ExitCode>;
}

export type Parsed =
  | { readonly kind: "help"; readonly verb?: Verb }
  | { readonly kind: "run"; readonly verb: Verb; readonly invocation: Invocation };

/** The plugin's help: its verbs and the common flags. */
export function pluginHelp(verbs: readonly Verb[]): string {
  const width = Math.max(...verbs.map((v) => v.name.length));
  const lines = verbs.map((v) => `  ${v.name.padEnd(width)}  ${v.summary}`);
  return `kubectl mtls: CAST Imaging's PostgreSQL mutual TLS (SecureDatabase sdb, ImagingConnection imc), as the operator sees it.

Usage: kubectl mtls COMMAND [flags]

Commands:
${lines.join("\n")}

Run kubectl mtls COMMAND --help for a command's flags and exit codes.

${COMMON_HELP}`;
}

export function verbHelp(verb: Verb): string {
  return `${verb.help.trimEnd()}\n\n${COMMON_HELP}`;
}

/**
 * Finds the verb (the first word that is not a flag or a flag's value, so `-n cast status` works too) and parses the
 * rest against its flags. Throws PluginError for an unknown verb or flag.
 */
export function parseCommandLine(argv: readonly string[], verbs: readonly Verb[]): Parsed {
  const verbIndex = firstPositional(argv);
  const rest = verbIndex === undefined ? [...argv] : [...argv.slice(0, verbIndex), ...argv.slice(verbIndex + 1)];
  const word = verbIndex === undefined ? undefined : argv[verbIndex];
  if (word === undefined || word === "help") {
    const about = word === "help" ? rest.find((a) => !a.startsWith("-")) : undefined;
    return about === undefined ? { kind: "help" } : { kind: "help", verb: findVerb(about, verbs) };
  }
  const verb = findVerb(word, verbs);
  const options = { ...COMMON_OPTIONS, ...verb.options };
  let values: Record<string, FlagValue>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options, allowPositionals: true, strict: true }) as {
      values: Record<string, FlagValue>;
      positionals: string[];
    });
  } catch (err) {
    // node:util's messages name the flag; keep the first sentence and point at the help.
    const message = (err instanceof Error ? err.message : String(err)).split(/\.\s|\n/)[0] ?? "invalid flags";
    throw new PluginError(`${message.replace(/\.$/, "")}: see kubectl mtls ${verb.name} --help`);
  }
  if (values.help === true) return { kind: "help", verb };
  return { kind: "run", verb, invocation: { flags: values, positionals } };
}

function findVerb(word: string, verbs: readonly Verb[]): Verb {
  const verb = verbs.find((v) => v.name === word);
  if (!verb) {
    throw new PluginError(`unknown command "${word}": the commands are ${verbs.map((v) => v.name).join(", ")} (kubectl mtls --help)`);
  }
  return verb;
}

/** The long names of the common flags that take a value, with their short forms: their next word is not the verb. */
const VALUE_FLAGS = new Set(
  Object.entries(COMMON_OPTIONS).flatMap(([name, o]) => (o.type === "string" ? [`--${name}`, ...("short" in o ? [`-${o.short}`] : [])] : [])),
);

function firstPositional(argv: readonly string[]): number | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") return i + 1 < argv.length ? i + 1 : undefined;
    if (!arg.startsWith("-") || arg === "-") return i;
    if (VALUE_FLAGS.has(arg)) i++;
  }
  return undefined;
}

/** A string flag's value, or undefined; a boolean flag reads as true/false. */
export function stringFlag(invocation: Invocation, name: string): string | undefined {
  const v = invocation.flags[name];
  return typeof v === "string" ? v : undefined;
}

export function booleanFlag(invocation: Invocation, name: string): boolean {
  return invocation.flags[name] === true;
}

/** A flag restricted to a few values: the value, the default when absent, or a PluginError naming the choices. */
export function choiceFlag<const C extends readonly string[]>(invocation: Invocation, name: string, choices: C, fallback: C[number], verb: string): C[number] {
  const v = stringFlag(invocation, name);
  if (v === undefined) return fallback;
  if (!choices.includes(v)) throw new PluginError(`--${name} must be one of ${choices.join(", ")}, not "${v}" (kubectl mtls ${verb} --help)`);
  return v;
}

/** A duration flag (Go syntax, as the CRDs: 90s, 2m, 1h30m): milliseconds, the default when absent, or a PluginError. */
export function durationFlag(invocation: Invocation, name: string, fallback: string, verb: string): number {
  const v = stringFlag(invocation, name) ?? fallback;
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch (err) {
    if (!(err instanceof DurationError)) throw err;
    throw new PluginError(`--${name} ${JSON.stringify(v)} is not a duration: write e.g. 90s, 2m or 1h30m (kubectl mtls ${verb} --help)`);
  }
  if (ms <= 0) throw new PluginError(`--${name} must be longer than 0s, e.g. ${formatDuration(120_000)} (kubectl mtls ${verb} --help)`);
  return ms;
}
