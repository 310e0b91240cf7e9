import { expect } from "chai";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { judgeFirstMessage, probePlaintext } from "../../../src/postgres/plaintext-probe";

/** An ErrorResponse body: type-tagged NUL-terminated fields, then a NUL. */
const errorBody = (fields: Record<string, string>) => Buffer.concat([...Object.entries(fields).map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
const message = (type: string, body: Buffer) => {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

describe("plaintext probe: does the server take a connection without TLS?", () => {
  describe("judgeFirstMessage", () => {
    it("Refused: the managed pg_hba.conf's hostnossl reject (SQLSTATE 28000), in the server's words", () => {
      const r = judgeFirstMessage(
        "E",
        errorBody({
          S: "FATAL",
          C: "28000",
          M: 'pg_hba.conf rejects connection for host "10.0.0.1", user "postgres", database "postgres", no encryption',
        }),
      );
      expect(r.verdict).to.equal("Refused");
      expect(r.message).to.equal('FATAL: pg_hba.conf rejects connection for host "10.0.0.1", user "postgres", database "postgres", no encryption');
    });

    it("Accepted: any authentication request, or none at all (trust)", () => {
      expect(judgeFirstMessage("R", int32(0))).to.deep.include({ verdict: "Accepted" });
      expect(judgeFirstMessage("R", int32(0)).message).to.contain("without any authentication");
      expect(judgeFirstMessage("R", Buffer.concat([int32(10), Buffer.from("SCRAM-SHA-256\0\0")])).message).to.contain("asked for authentication (request 10)");
      expect(judgeFirstMessage("R", int32(5)).verdict).to.equal("Accepted");
    });

    it("Unknown: other errors (starting up, too many connections) and other messages prove nothing either way", () => {
      const starting = judgeFirstMessage("E", errorBody({ S: "FATAL", C: "57P03", M: "the database system is starting up" }));
      expect(starting.verdict).to.equal("Unknown");
      expect(starting.message).to.contain("57P03");
      expect(judgeFirstMessage("E", errorBody({ S: "FATAL", C: "53300", M: "sorry, too many clients already" })).verdict).to.equal("Unknown");
      expect(judgeFirstMessage("N", Buffer.alloc(0)).verdict).to.equal("Unknown");
      expect(judgeFirstMessage("E", Buffer.from([0])).verdict).to.equal("Unknown");
    });
  });

  describe("probePlaintext against a socket that answers like a server", () => {
    let server: Server;
    let answer: (socket: Socket) => void;
    let startup: Buffer | undefined;
    before(async () => {
      server = createServer((socket) => {
        socket.once("data", (d: Buffer) => {
          startup = d;
          answer(socket);
        });
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    });
    after(() => server.close());
    const probe = (timeoutMs = 2000) => probePlaintext({
      host: "127.0.0.1",
      port: (server.address() as AddressInfo).port,
      user: "postgres",
      database: "app",
      timeoutMs,
    });

    it("sends a protocol 3.0 startup with the user and database, and reads a refusal split across packets", async () => {
      answer = (s) => {
        const m = message("E", errorBody({ S: "FATAL", C: "28000", M: "no encryption" }));
        s.write(m.subarray(0, 3));
        setTimeout(() => s.write(m.subarray(3)), 20);
      };
      expect(await probe()).to.deep.equal({ verdict: "Refused", message: "FATAL: no encryption" });
      expect(startup!.readInt32BE(0)).to.equal(startup!.length);
      expect(startup!.readInt32BE(4)).to.equal(196608);
      expect(startup!.subarray(8).toString()).to.contain("user\0postgres\0database\0app\0");
    });

    it("Accepted on an authentication request; Unknown on silence, a hang-up, garbage or nobody listening", async () => {
      answer = (s) => s.write(message("R", int32(3)));
      expect((await probe()).verdict).to.equal("Accepted");
      answer = () => undefined;
      expect(await probe(200)).to.deep.equal({ verdict: "Unknown", message: "no answer within 200 ms" });
      answer = (s) => s.end();
      expect((await probe()).verdict).to.equal("Unknown");
      answer = (s) => s.write(Buffer.from("HTTP/1.1 400 Bad Request\r\n\r\n"));
      expect(await probe()).to.deep.equal({ verdict: "Unknown", message: "the answer is not a PostgreSQL protocol message" });
      const closed = await probePlaintext({ host: "127.0.0.1", port: 1, user: "u", database: "d", timeoutMs: 2000 });
      expect(closed.verdict).to.equal("Unknown");
      expect(closed.message).to.contain("could not connect");
    });
  });
});
