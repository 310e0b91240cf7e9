/**
 * A minimal DER reader and writer for the X.509 structures we make and inspect. A general ASN.1 object model
 * (@peculiar/x509, asn1js) cost 2–6 ms of event-loop time per certificate parsed or built — it even tries to
 * decode every BIT STRING, signatures included; walking or emitting our few fixed structures costs tens of
 * microseconds, which matters because renewal policies parse certificates on every reconcile.
 * DER only: definite lengths, no indefinite forms.
 */

export interface Tlv {
  /** 0 universal, 1 application, 2 context-specific, 3 private. */
  readonly cls: number;
  readonly constructed: boolean;
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly headerStart: number;
  /** Offset of the first content octet. */
  readonly start: number;
  /** Offset just past the content. */
  readonly end: number;
}

export class DerError extends Error {
  override readonly name = "DerError";
}

export function readTlv(buf: Uint8Array, pos: number, limit: number = buf.length): Tlv {
  const headerStart = pos;
  if (pos >= limit) throw new DerError("truncated DER: identifier expected");
  const id = buf[pos++] as number;
  let tag = id & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    for (;;) {
      if (pos >= limit) throw new DerError("truncated DER tag");
      const b = buf[pos++] as number;
      tag = tag * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) break;
      if (tag > 0xffffff) throw new DerError("DER tag too large");
    }
  }
  if (pos >= limit) throw new DerError("truncated DER: length expected");
  let length = buf[pos++] as number;
  if (length === 0x80) throw new DerError("indefinite length is not DER");
  if (length > 0x80) {
    const n = length & 0x7f;
    if (n > 4) throw new DerError("DER length too large");
    length = 0;
    for (let i = 0; i < n; i++) {
      if (pos >= limit) throw new DerError("truncated DER length");
      length = length * 256 + (buf[pos++] as number);
    }
  }
  const end = pos + length;
  if (end > limit) throw new DerError("DER value runs past its container");
  return { cls: id >> 6, constructed: (id & 0x20) !== 0, tag, headerStart, start: pos, end };
}

/** The TLVs directly inside a constructed TLV. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.start; pos < parent.end; ) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function content(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.start, tlv.end - tlv.start);
}

/** The whole encoding of a TLV (header included). */
export function encoding(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.headerStart, tlv.end - tlv.headerStart);
}

export function expectTlv(tlv: Tlv | undefined, cls: number, tag: number, what: string): Tlv {
  if (!tlv || tlv.cls !== cls || tlv.tag !== tag) throw new DerError(`${what} expected`);
  return tlv;
}

export const UNIVERSAL = 0;
export const CONTEXT = 2;
export const TAG = { BOOLEAN: 1, INTEGER: 2, BIT_STRING: 3, OCTET_STRING: 4, OID: 6, SEQUENCE: 16, SET: 17, UTC_TIME: 23, GENERALIZED_TIME: 24 } as const;

export function decodeOid(buf: Uint8Array, tlv: Tlv): string {
  const parts: number[] = [];
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) {
    const b = buf[i] as number;
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else {
        parts.push(value);
      }
      value = 0;
    }
  }
  return parts.join(".");
}

/** UTCTime (YYMMDDHHMMSSZ, years 1950–2049) or GeneralizedTime (YYYYMMDDHHMMSS[.f]Z). */
export function decodeTime(buf: Uint8Array, tlv: Tlv): Date {
  const text = content(buf, tlv).toString("latin1");
  const m =
    tlv.tag === TAG.UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text);
  if (!m) throw new DerError(`unsupported time "${text}"`);
  let year = Number(m[1]);
  if (tlv.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

export function decodeBoolean(buf: Uint8Array, tlv: Tlv): boolean {
  return tlv.end > tlv.start && buf[tlv.start] !== 0;
}

/** A non-negative INTEGER that fits a JS number (path lengths and the like). */
export function decodeSmallInteger(buf: Uint8Array, tlv: Tlv): number {
  let v = 0;
  for (let i = tlv.start; i < tlv.end; i++) v = v * 256 + (buf[i] as number);
  return v;
}

// ------------------------------------------------------------------------------------------ writer

function lengthOctets(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV from an identifier octet and content (low tag numbers only, which is all X.509 needs). */
export function tlv(identifier: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([identifier]), lengthOctets(body.length), body]);
}

export const der = {
  sequence: (...items: Uint8Array[]): Buffer => tlv(0x30, ...items),
  set: (...items: Uint8Array[]): Buffer => tlv(0x31, ...items),
  boolean: (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00])),
  null: (): Buffer => tlv(0x05),
  octetString: (bytes: Uint8Array): Buffer => tlv(0x04, bytes),
  /** BIT STRING whose content is whole bytes (keys, signatures). */
  bitString: (bytes: Uint8Array, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), bytes),
  /** A non-negative INTEGER from big-endian magnitude bytes (minimal, sign byte added when needed). */
  unsignedInteger: (magnitude: Uint8Array): Buffer => {
    let i = 0;
    while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
    const body = Buffer.from(magnitude.subarray(i));
    const needsSign = body.length === 0 || ((body[0] as number) & 0x80) !== 0;
    return tlv(0x02, needsSign ? Buffer.concat([Buffer.from([0]), body]) : body);
  },
  integer: (value: bigint | number): Buffer => {
    let hex = BigInt(value).toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    return der.unsignedInteger(Buffer.from(hex, "hex"));
  },
  enumerated: (value: number): Buffer => tlv(0x0a, Buffer.from([value])),
  oid: (dotted: string): Buffer => {
    const arcs = dotted.split(".").map(Number);
    const out: number[] = [];
    const push = (n: number): void => {
      const bytes = [n & 0x7f];
      for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift((v & 0x7f) | 0x80);
      out.push(...bytes);
    };
    push((arcs[0] ?? 0) * 40 + (arcs[1] ?? 0));
    for (const arc of arcs.slice(2)) push(arc);
    return tlv(0x06, Buffer.from(out));
  },
  utf8String: (text: string): Buffer => tlv(0x0c, Buffer.from(text, "utf8")),
  printableString: (text: string): Buffer => tlv(0x13, Buffer.from(text, "latin1")),
  ia5String: (text: string): Buffer => tlv(0x16, Buffer.from(text, "latin1")),
  /** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Z. */
  time: (date: Date): Buffer => {
    const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
    const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
    return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), "latin1")) : tlv(0x18, Buffer.from(digits, "latin1"));
  },
  /** [n] EXPLICIT: a constructed context tag around one encoding. */
  explicit: (tagNumber: number, inner: Uint8Array): Buffer => tlv(0xa0 | tagNumber, inner),
  /** [n] IMPLICIT on a primitive value (e.g. keyIdentifier, dNSName, iPAddress). */
  implicitPrimitive: (tagNumber: number, bytes: Uint8Array): Buffer => tlv(0x80 | tagNumber, bytes),
};
