/**
 * Which consumer of the chart's Secret restarts next. The chart copies the files at pod start, so every change of
 * the material must restart each consumer; one at a time (CAST Imaging stays served by the others), each only once
 * its predecessor's rollout is complete, never twice for one material. Pure: the state lives on the pod templates
 * (CHART_MATERIAL_ANNOTATION says which material a workload's pods started with).
 */
import type { RolloutState } from "./rollout";

export interface Consumer {
  /** `<Kind> <name>`, for messages; consumers are ordered by it. */
  id: string;
  /** The material the pod template was last restarted for. */
  material?: string;
  rollout: RolloutState;
}

export type ConsumerTurn =
  | { state: "Delivered"; message: string }
  | { state: "Restarting"; message: string; restartNow: boolean; stalled: boolean }
  | { state: "WaitingForRestart"; message: string };

/** Each consumer's turn for the material `desired`, in the order of `consumers` (sorted by id). */
export function restartTurns(consumers: readonly Consumer[], desired: string): Map<string, ConsumerTurn> {
  const sorted = [...consumers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const turns = new Map<string, ConsumerTurn>();
  const total = sorted.length;
  const position = (c: Consumer) => `${sorted.indexOf(c) + 1} of ${total}`;
  // Anyone still rolling out (our restart or someone else's) holds the line: one change in flight at a time.
  let busy = sorted.find((c) => c.rollout.state !== "Complete");
  for (const c of sorted) {
    if (c.material === desired) {
      turns.set(
        c.id,
        c.rollout.state === "Complete"
          ? { state: "Delivered", message: `its pods started with the current material (${desired})` }
          : { state: "Restarting", message: `restarted (${position(c)}): ${c.rollout.message}`, restartNow: false, stalled: c.rollout.state === "Stalled" },
      );
      continue;
    }
    if (busy === undefined) {
      busy = c;
      turns.set(c.id, { state: "Restarting", message: `restarting (${position(c)}) so its pods copy the new material`, restartNow: true, stalled: false });
      continue;
    }
    const reason = busy === c && c.rollout.state !== "Complete" ? `its own rollout to finish (${c.rollout.message})` : `${busy.id} to finish rolling out`;
    turns.set(c.id, { state: "WaitingForRestart", message: `waits (${position(c)}) for ${reason}` });
  }
  return turns;
}
