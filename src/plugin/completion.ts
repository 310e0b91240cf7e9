/**
 * Shell completion. One completer, from the verbs' own tables (VERBS: names, flags, what their arguments are):
 * kubectl ≥ 1.26 runs `kubectl_complete-mtls ARGS… CURRENT` for `kubectl mtls <TAB>` and reads Cobra's format
 * (candidates one a line, then `:<directive>`); `kubectl mtls completion bash|zsh` prints a script for the
 * `kubectl-mtls` command that completes the verbs itself and asks the same completer for the rest. Object names
 * come from `kubectl get <kind> -o name`, so they follow the user's kubectl and its kubeconfig.
 */
import { execFile } from "node:child_process";
import { GROUP, IMAGING_CONNECTION, SECURE_DATABASE } from "../api/types";
import { COMMON_OPTIONS, type Completion, type Invocation, type Verb, type VerbContext } from "./command";
import { EXIT, PluginError, type ExitCode } from "./errors";

/** The hidden first word that asks the plugin itself for candidates (what the printed scripts call). */
export const COMPLETE_COMMAND = "__complete";

/** Cobra's ShellCompDirectiveNoFileComp: no file names when nothing matches. */
const NO_FILE_COMPLETION = 4;

export const SHELLS = ["bash", "zsh"] as const;

/** What to look up for the word being completed: fixed words, or names the cluster knows. */
export type CompletionRequest =
  | { readonly words: readonly string[] }
  | { readonly kinds: readonly ("sdb" | "imc")[]; readonly namespace: string | undefined; readonly kube: KubeFlags }
  | { readonly namespaces: true; readonly kube: KubeFlags };

export interface KubeFlags {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
}

interface OptionShape {
  readonly type: "string" | "boolean";
  readonly short?: string;
}

function options(verb: Verb | undefined): Record<string, OptionShape> {
  return { ...COMMON_OPTIONS, ...(verb?.options as Record<string, OptionShape> | undefined) };
}

/** `--name` and `-s` of every flag. */
function flagWords(verb: Verb | undefined): string[] {
  return Object.entries(options(verb)).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
}

/** The long name of a flag word (`-n` → namespace), if it is one. */
function flagName(word: string, verb: Verb | undefined): string | undefined {
  const entries = Object.entries(options(verb));
  if (word.startsWith("--")) return entries.find(([name]) => `--${name}` === word)?.[0];
  return entries.find(([, o]) => o.short !== undefined && `-${o.short}` === word)?.[0];
}

/**
 * What the last word of `args` (the one being completed, possibly "") completes to, given the words before it:
 * a verb, a flag, a flag's value, or the verb's arguments. Pure.
 */
export function completionRequest(args: readonly string[], verbs: readonly Verb[]): CompletionRequest {
  const before = args.slice(0, -1);
  const current = args[args.length - 1] ?? "";
  let verb: Verb | undefined;
  let helpWord = false;
  const values: Record<string, string> = {};
  for (let i = 0; i < before.length; i++) {
    const word = before[i] ?? "";
    const name = word.startsWith("-") ? flagName(word.split("=")[0] ?? word, verb) : undefined;
    if (name !== undefined) {
      if (options(verb)[name]?.type === "string" && !word.includes("=")) values[name] = before[++i] ?? "";
      else if (word.includes("=")) values[name] = word.slice(word.indexOf("=") + 1);
      continue;
    }
    if (!word.startsWith("-") && verb === undefined && !helpWord) {
      if (word === "help") helpWord = true;
      else verb = verbs.find((v) => v.name === word);
    }
  }
  const kube: KubeFlags = { kubeconfig: values.kubeconfig, context: values.context };
  const previous = before[before.length - 1] ?? "";
  const pending = previous.startsWith("-") && !previous.includes("=") ? flagName(previous, verb) : undefined;
  if (pending !== undefined && options(verb)[pending]?.type === "string" && values[pending] === "") {
    if (pending === "namespace") return { namespaces: true, kube };
    return resolve(verb?.completes?.flags?.[pending], values.namespace, kube);
  }
  if (current.startsWith("-")) return { words: flagWords(verb) };
  if (helpWord) return { words: verbs.map((v) => v.name) };
  if (verb === undefined) return { words: [...verbs.map((v) => v.name), "help"] };
  return resolve(verb.completes?.arguments, values.namespace, kube);
}

function resolve(c: Completion | undefined, namespace: string | undefined, kube: KubeFlags): CompletionRequest {
  if (c === undefined) return { words: [] };
  if (c === "namespaces") return { namespaces: true, kube };
  if ("words" in c) return { words: c.words };
  return { kinds: c.kinds, namespace, kube };
}

const PLURALS: Readonly<Record<"sdb" | "imc", string>> = {
  sdb: `${SECURE_DATABASE.plural}.${GROUP}`,
  imc: `${IMAGING_CONNECTION.plural}.${GROUP}`,
};

/** The names in `kubectl get … -o name` lines (`securedatabase.mtls.imaging.dev/db` → `db`). */
export function namesFromOutput(output: string): string[] {
  return output
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.includes("/"))
    .map((l) => l.slice(l.indexOf("/") + 1));
}

/** Cobra's answer: the candidates that start with the current word, then the directive. */
export function renderCandidates(candidates: readonly string[], current: string): string {
  return [...candidates.filter((c) => c.startsWith(current)), `:${NO_FILE_COMPLETION}`].join("\n") + "\n";
}

/** Runs kubectl get for names; completion never fails aloud, so any failure is no candidates. */
function kubectlGet(args: readonly string[], kube: KubeFlags): Promise<string> {
  const all = [...(kube.kubeconfig ? ["--kubeconfig", kube.kubeconfig] : []), ...(kube.context ? ["--context", kube.context] : []), "get", ...args, "-o", "name"];
  return new Promise((resolve) => {
    execFile(process.env.KUBECTL || "kubectl", all, { timeout: 5000 }, (err, stdout) => resolve(err ? "" : String(stdout)));
  });
}

/** The candidates of a request, looked up with kubectl where needed. */
export async function candidates(request: CompletionRequest): Promise<string[]> {
  if ("words" in request) return [...request.words];
  if ("namespaces" in request) return namesFromOutput(await kubectlGet(["namespaces"], request.kube));
  const ns = request.namespace ? ["--namespace", request.namespace] : [];
  const lists = await Promise.all(request.kinds.map(async (k) => namesFromOutput(await kubectlGet([PLURALS[k], ...ns], request.kube)).map((n) => `${k}/${n}`)));
  return lists.flat();
}

/** `kubectl_complete-mtls ARGS…` and `kubectl-mtls __complete ARGS…`: Cobra's format on stdout. */
export async function complete(args: readonly string[], verbs: readonly Verb[]): Promise<string> {
  const words = args.length === 0 ? [""] : args;
  return renderCandidates(await candidates(completionRequest(words, verbs)), words[words.length - 1] ?? "");
}

/** The script `kubectl mtls completion SHELL` prints: verbs at once, the rest from the completer. */
export function completionScript(shell: (typeof SHELLS)[number], verbs: readonly Verb[]): string {
  const names = [...verbs.map((v) => v.name), "help"].join(" ");
  if (shell === "bash") {
    return `# kubectl-mtls completion for bash: source <(kubectl mtls completion bash)
# (kubectl mtls <TAB> itself is completed by kubectl >= 1.26 through kubectl_complete-mtls on PATH.)
_kubectl_mtls() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" verbs="${names}" out
  if [[ \${COMP_CWORD} -eq 1 && "\${cur}" != -* ]]; then
    COMPREPLY=( $(compgen -W "\${verbs}" -- "\${cur}") )
    return
  fi
  out=$(kubectl-mtls ${COMPLETE_COMMAND} "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null | sed '/^:[0-9]*$/d')
  COMPREPLY=( $(compgen -W "\${out}" -- "\${cur}") )
}
complete -F _kubectl_mtls kubectl-mtls
`;
  }
  return `#compdef kubectl-mtls
# kubectl-mtls completion for zsh: source <(kubectl mtls completion zsh)
# (kubectl mtls <TAB> itself is completed by kubectl >= 1.26 through kubectl_complete-mtls on PATH.)
_kubectl_mtls() {
  local -a verbs candidates
  verbs=(${names})
  if (( CURRENT == 2 )) && [[ "\${words[CURRENT]}" != -* ]]; then
    compadd -a verbs
    return
  fi
  candidates=("\${(@f)$(kubectl-mtls ${COMPLETE_COMMAND} "\${(@)words[2,CURRENT]}" 2>/dev/null | sed '/^:[0-9]*$/d')}")
  compadd -a candidates
}
compdef _kubectl_mtls kubectl-mtls
`;
}

// ------------------------------------------------------------------------------------------------------ verb

const HELP = `kubectl mtls completion: shell completion for the plugin's commands, flags and object names.

Usage:
  kubectl mtls completion bash|zsh

kubectl mtls <TAB> (kubectl >= 1.26): put bin/kubectl_complete-mtls on PATH next to kubectl-mtls (npm and krew
installs do); kubectl runs it for the plugin's candidates. kubectl-mtls <TAB>, the command alone:
  bash   source <(kubectl mtls completion bash)      (e.g. in ~/.bashrc)
  zsh    source <(kubectl mtls completion zsh)       (after compinit)
Commands and flags complete from the plugin itself; sdb/NAME and imc/NAME from kubectl get -o name in the
namespace of -n (else the context's), with the same --kubeconfig and --context.

Exit codes: 0 printed, 2 no or an unknown shell.
`;

/** The verb; VERBS is passed in by main.ts so the script lists every verb, this one included. */
export function completionVerb(verbs: () => readonly Verb[]): Verb {
  return {
    name: "completion",
    summary: "print a bash or zsh completion script (kubectl mtls <TAB> works through kubectl_complete-mtls)",
    help: HELP,
    options: {},
    completes: { arguments: { words: SHELLS } },
    run: (invocation: Invocation, ctx: VerbContext): Promise<ExitCode> => {
      const [shell, ...extra] = invocation.positionals;
      const known = SHELLS.find((s) => s === shell);
      if (!known || extra.length > 0) throw new PluginError(`completion takes one shell, ${SHELLS.join(" or ")}: kubectl mtls completion bash`);
      ctx.out.stdout(completionScript(known, verbs()));
      return Promise.resolve(EXIT.ok);
    },
  };
}
