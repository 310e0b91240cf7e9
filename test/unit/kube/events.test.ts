import { expect } from "chai";
import { Writable } from "node:stream";
import winston from "winston";
import { EventRecorder, type EventSubject } from "../../../src/kube/events";
import type { RestClient } from "../../../src/kube/rest";

interface Recorded {
  namespace: string | undefined;
  body: { reason: string; type: string; message: string; firstTimestamp: string; involvedObject: { uid?: string } };
}

/** A RestClient that keeps what would be created, or refuses it. */
function fakeClient(fail = false): { client: RestClient; created: Recorded[] } {
  const created: Recorded[] = [];
  const create = async (_type: unknown, namespace: string | undefined, body: unknown) => {
    if (fail) throw new Error("events is forbidden");
    created.push({ namespace, body: body as Recorded["body"] });
    return body;
  };
  return { client: { create } as unknown as RestClient, created };
}

function capturingLogger(): { log: winston.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: winston.createLogger({ format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] }), lines };
}

const subject: EventSubject = {
  apiVersion: "mtls.imaging.dev/v1alpha1",
  kind: "SecureDatabase",
  metadata: { name: "db", namespace: "cast", uid: "u1" },
};
const silent = winston.createLogger({ silent: true });

describe("EventRecorder", () => {
  let t = Date.parse("2026-11-23T12:00:00Z");
  const clock = () => new Date(t);

  it("stamps events with the injected clock", async () => {
    t = Date.parse("2026-11-23T12:00:00Z");
    const { client, created } = fakeClient();
    await new EventRecorder(client, silent, clock, "test").record(subject, "Normal", "CAGenerated", "generated");
    expect(created.map((c) => [c.namespace, c.body.reason, c.body.type, c.body.firstTimestamp])).to.deep.equal([
      ["cast", "CAGenerated", "Normal", "2026-11-23T12:00:00.000Z"],
    ]);
  });

  it("records an identical event again only after the 10-minute window on its clock, and logs every one", async () => {
    t = Date.parse("2026-11-23T12:00:00Z");
    const { client, created } = fakeClient();
    const { log, lines } = capturingLogger();
    const events = new EventRecorder(client, log, clock, "test");
    const warn = () => events.record(subject, "Warning", "Unreachable", "connect ECONNREFUSED");
    await warn();
    t += 9 * 60_000;
    await warn();
    await events.record(subject, "Warning", "Timeout", "no answer");
    t += 60_000;
    await warn();
    expect(created.map((c) => c.body.reason)).to.deep.equal(["Unreachable", "Timeout", "Unreachable"]);
    // winston appends the event's message to the line's message.
    expect(lines.map((l) => [l.message, l.reason, l.resource, l.namespace])).to.deep.equal([
      ["event connect ECONNREFUSED", "Unreachable", "SecureDatabase/db", "cast"],
      ["event connect ECONNREFUSED", "Unreachable", "SecureDatabase/db", "cast"],
      ["event no answer", "Timeout", "SecureDatabase/db", "cast"],
      ["event connect ECONNREFUSED", "Unreachable", "SecureDatabase/db", "cast"],
    ]);
  });

  it("logs a refused event write under EventWriteFailed and does not throw", async () => {
    const { client } = fakeClient(true);
    const { log, lines } = capturingLogger();
    await new EventRecorder(client, log, clock, "test").record(subject, "Normal", "Reloaded", "reloaded");
    expect(lines.map((l) => [l.message, l.reason, l.error])).to.deep.equal([
      ["event reloaded", "Reloaded", undefined],
      ["could not record event reloaded", "EventWriteFailed", "events is forbidden"],
    ]);
  });
});

describe("EventRecorder's memory of recent events", () => {
  it("keeps deduplicating among tens of thousands of objects, and repeats an event once its window has passed", async () => {
    const { client, created } = fakeClient();
    let t = Date.parse("2026-12-03T00:00:00Z");
    const recorder = new EventRecorder(client, silent, () => new Date(t));
    const of = (i: number): EventSubject => ({ ...subject, metadata: { name: `db-${i}`, namespace: "cast", uid: `u-${i}` } });
    for (let i = 0; i < 30_000; i++) await recorder.record(of(i), "Normal", "CAGenerated", "generated");
    await recorder.record(of(7), "Normal", "CAGenerated", "generated");
    expect(created).to.have.length(30_000);
    t += 10 * 60_000;
    await recorder.record(of(7), "Normal", "CAGenerated", "generated");
    expect(created).to.have.length(30_001);
  });
});
