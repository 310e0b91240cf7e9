/**
 * Password rules (spec.postgres.hba.rules with clientCertificate none) made visible: the list for
 * status.passwordAccess, the words the ConfigApplied condition adds while one is in force, and the events recorded
 * when the managed pg_hba.conf block changes (PasswordOverTLS when the set of password records changes,
 * PasswordRuleShadowed when the new block has rules PostgreSQL cannot tell apart by certificate). Pure.
 */
import type { ResolvedHbaRule } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { STATUS_LIMITS, type PasswordAccessStatus } from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import { findManagedBlocks } from "../../postgres/managed-block";
import { findPasswordRuleOverlaps, isPasswordRecord, type PasswordRuleOverlap } from "../../postgres/pg-hba";
import type { PlannedEvent } from "./step";

const ruleName = (i: number): string => `spec.postgres.hba.rules[${i}]`;

/** The password rules as status lists them; undefined when there is none (the field goes away). */
export function passwordAccess(rules: readonly ResolvedHbaRule[]): PasswordAccessStatus[] | undefined {
  const list = rules.flatMap((r, rule) =>
    r.clientCertificate === "none" ? [{ rule, users: [...r.users], databases: [...r.databases], addresses: [...r.addresses] }] : [],
  );
  return list.length > 0 ? list : undefined;
}

/** Overlaps of password rules with other rules, named by their spec paths. */
export function passwordRuleOverlaps(rules: readonly ResolvedHbaRule[]): PasswordRuleOverlap[] {
  return findPasswordRuleOverlaps(rules, ruleName);
}

function describeRule(a: PasswordAccessStatus): string {
  const users = a.users ?? [];
  const databases = a.databases ?? [];
  return (
    `${ruleName(a.rule ?? 0)}: ${users.length === 1 ? "user" : "users"} ${users.join(", ")} on ` +
    `${databases.length === 1 ? "database" : "databases"} ${databases.join(", ")} from ${(a.addresses ?? []).join(", ")}`
  );
}

/** At most `max` characters; longer text ends with what to read instead. */
function clip(text: string, max: number, instead: string): string {
  if (text.length <= max) return text;
  const tail = ` … (${instead})`;
  return text.slice(0, max - tail.length) + tail;
}

/** How pg_hba.conf lets TCP clients in, for messages: certificate-only, or which password rules exist besides. */
export function hbaPolicySummary(rules: readonly ResolvedHbaRule[]): string {
  const n = passwordAccess(rules)?.length ?? 0;
  if (n === 0) return "certificate-only TLS";
  return `TLS only; a client certificate except for ${n} password ${n === 1 ? "rule" : "rules"} (status.passwordAccess)`;
}

/**
 * The ConfigApplied condition while password rules are in force: the certificate-only condition's message then says
 * which roles get in by password, and which rules overlap. Without password rules: `applied` as it is.
 */
export function withPasswordAccess(applied: ConditionInput, rules: readonly ResolvedHbaRule[]): ConditionInput {
  const access = passwordAccess(rules);
  if (!access) return applied;
  const what =
    `postgresql.conf enables TLS with the operator's files; pg_hba.conf admits TCP clients only over TLS, with a client ` +
    `certificate except for ${access.length} password ${access.length === 1 ? "rule" : "rules"} (clientCertificate none, ` +
    `status.passwordAccess), whose roles log in with their password: ${access.map(describeRule).join("; ")}`;
  const overlaps = passwordRuleOverlaps(rules);
  const shadowed = overlaps.length === 0 ? "" : `. Overlapping rules: ${overlaps.map((o) => o.message).join("; ")}`;
  const max = Math.floor(STATUS_LIMITS.conditionMessage / 2);
  return {
    ...applied,
    message: clip(what, max, "see status.passwordAccess") + clip(shadowed, max, "see the PasswordRuleShadowed events"),
  };
}

/** The managed block's lines of a pg_hba.conf text (none when it has no block or a damaged one). */
function blockLines(hba: string | undefined): readonly string[] {
  if (hba === undefined) return [];
  const scan = findManagedBlocks(hba);
  return scan.ok && scan.block ? scan.block.bodyLines : [];
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((v) => y.has(v));
};

/**
 * The events of a pg_hba.conf change from `before` to `after` (whole file texts): PasswordOverTLS when the password
 * records differ (a Warning while some remain, Normal when the last one went), PasswordRuleShadowed when the block
 * changed and its rules overlap. Nothing when the block is as it was: a reconcile that writes nothing says nothing.
 */
export function passwordAccessEvents(
  before: string | undefined,
  after: string,
  rules: readonly ResolvedHbaRule[],
): PlannedEvent[] {
  const old = blockLines(before);
  const now = blockLines(after);
  if (old.length === now.length && old.every((l, i) => l === now[i])) return [];
  const events: PlannedEvent[] = [];
  const oldPasswords = old.filter(isPasswordRecord);
  const newPasswords = now.filter(isPasswordRecord);
  if (!sameSet(oldPasswords, newPasswords)) {
    const access = passwordAccess(rules);
    if (access) {
      const message =
        `pg_hba.conf now lets ${access.length === 1 ? "these roles" : "the roles of these rules"} in with a password over TLS, ` +
        `without a client certificate: ${access.map(describeRule).join("; ")}`;
      events.push({ type: "Warning", reason: Reason.PasswordOverTLS, message });
    } else {
      const message = "pg_hba.conf no longer admits any role by password: every TCP client needs TLS and a client certificate";
      events.push({ type: "Normal", reason: Reason.PasswordOverTLS, message });
    }
  }
  const overlaps = passwordRuleOverlaps(rules);
  if (overlaps.length > 0) {
    events.push({ type: "Warning", reason: Reason.PasswordRuleShadowed, message: overlaps.map((o) => o.message).join("; ") });
  }
  return events;
}
