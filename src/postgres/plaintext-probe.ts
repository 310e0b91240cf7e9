/**
 * Does the server still take a connection without TLS? The managed pg_hba.conf block ends with `hostnossl … reject`,
 * so a server that has loaded it refuses every unencrypted startup with SQLSTATE 28000. A server that asks for a
 * password (or lets us in) over plain TCP has not: someone removed the block and the server reloaded or restarted
 * since. The mTLS probe cannot see this (it connects over TLS), so this one speaks the protocol's first message
 * itself: one StartupMessage, one answer, then the socket is closed. No password is ever sent.
 */
import { Socket } from "node:net";

export type PlaintextVerdict = "Refused" | "Accepted" | "Unknown";

export interface PlaintextProbeResult {
  readonly verdict: PlaintextVerdict;
  /** The server's own words for Refused, what it asked for on Accepted, or why we cannot tell. */
  readonly message: string;
}

export interface PlaintextProbeOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly timeoutMs: number;
}

const PROTOCOL_3_0 = 196608;
const INVALID_AUTHORIZATION = "28000";

function startupMessage(user: string, database: string): Buffer {
  const params = Buffer.from(
    `user\0${user}\0database\0${database}\0application_name\0imaging-db-mtls-operator plaintext check\0\0`,
    "utf8",
  );
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + params.length, 0);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, params]);
}

/** The fields of an ErrorResponse body: one type byte, then a NUL-terminated string, until a lone NUL. */
function errorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const type = String.fromCharCode(body[at]!);
    const end = body.indexOf(0, at + 1);
    if (end < 0) break;
    fields.set(type, body.subarray(at + 1, end).toString("utf8"));
    at = end + 1;
  }
  return fields;
}

/** What the server's first message says about an unencrypted connection (pure: unit-tested on raw bytes). */
export function judgeFirstMessage(type: string, body: Buffer): PlaintextProbeResult {
  if (type === "R") {
    const code = body.length >= 4 ? body.readInt32BE(0) : -1;
    const what = code === 0 ? "let the client in without any authentication" : `asked for authentication (request ${code})`;
    return { verdict: "Accepted", message: `the server ${what} over plain TCP: a connection without TLS and without a client certificate is possible` };
  }
  if (type === "E") {
    const fields = errorFields(body);
    const words = `${fields.get("S") ?? "ERROR"}: ${fields.get("M") ?? "(no message)"}`;
    if (fields.get("C") === INVALID_AUTHORIZATION) return { verdict: "Refused", message: words };
    return { verdict: "Unknown", message: `the server answered with ${words} (SQLSTATE ${fields.get("C") ?? "?"})` };
  }
  return { verdict: "Unknown", message: `the server answered the startup with an unexpected message type ${JSON.stringify(type)}` };
}

/** Never throws, always closes the socket; Unknown when the server cannot be reached or does not answer in time. */
export function probePlaintext(opts: PlaintextProbeOptions): Promise<PlaintextProbeResult> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (result: PlaintextProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ verdict: "Unknown", message: `no answer within ${opts.timeoutMs} ms` }), opts.timeoutMs);
    socket.once("error", (err) => finish({ verdict: "Unknown", message: `could not connect: ${err.message}` }));
    socket.once("close", () => finish({ verdict: "Unknown", message: "the server closed the connection without answering" }));
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 5) return;
      const length = received.readInt32BE(1);
      // An answer to a startup is small; a huge length means this is not a PostgreSQL server.
      if (length < 4 || length > 65536) return finish({ verdict: "Unknown", message: "the answer is not a PostgreSQL protocol message" });
      if (received.length < 1 + length) return;
      finish(judgeFirstMessage(String.fromCharCode(received[0]!), received.subarray(5, 1 + length)));
    });
    socket.connect(opts.port, opts.host, () => socket.write(startupMessage(opts.user, opts.database)));
  });
}
