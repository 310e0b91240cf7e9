/**
 * X.501 names: building the common-name-only subjects we issue, and reading any name back as text for
 * messages and status ("CN=app, O=Acme"), or its common name for the renewal policy.
 */
import { children, content, decodeOid, der, readTlv } from "./der.js";

const SHORT_NAMES: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.4": "SN",
  "2.5.4.5": "SERIALNUMBER",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "STREET",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "T",
  "2.5.4.42": "G",
  "1.2.840.113549.1.9.1": "E",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
};

const OID_COMMON_NAME = "2.5.4.3";

// X.520 PrintableString alphabet: where it suffices we use it (what OpenSSL does), otherwise UTF8String.
// Both reach PostgreSQL as the exact bytes of the name, which is what `cert` authentication compares.
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A Name holding only a common name: SEQUENCE { SET { SEQUENCE { id-at-commonName, string } } }. */
export function commonNameOnly(commonName: string): Buffer {
  const value = PRINTABLE.test(commonName) ? der.printableString(commonName) : der.utf8String(commonName);
  return der.sequence(der.set(der.sequence(der.oid(OID_COMMON_NAME), value)));
}

export interface NameAttribute {
  readonly type: string;
  readonly value: string;
}

/** The attributes of a Name, in order (RDNs flattened). */
export function nameAttributes(nameDer: Uint8Array): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of children(nameDer, readTlv(nameDer, 0))) {
    for (const atv of children(nameDer, rdn)) {
      const [type, value] = children(nameDer, atv);
      if (!type || !value) continue;
      out.push({ type: decodeOid(nameDer, type), value: decodeString(value.tag, content(nameDer, value)) });
    }
  }
  return out;
}

function decodeString(tag: number, bytes: Buffer): string {
  switch (tag) {
    case 0x0c: // UTF8String
      return bytes.toString("utf8");
    case 0x1e: // BMPString: UTF-16BE
      return Buffer.from(bytes).swap16().toString("utf16le");
    case 0x1c: {
      // UniversalString: UTF-32BE
      let s = "";
      for (let i = 0; i + 3 < bytes.length; i += 4) s += String.fromCodePoint(bytes.readUInt32BE(i));
      return s;
    }
    default: // PrintableString, IA5String, TeletexString (treated as Latin-1)
      return bytes.toString("latin1");
  }
}

/** RFC 4514-style text, most significant RDN first as encoded: "CN=app, O=Acme". */
export function nameToString(nameDer: Uint8Array): string {
  return nameAttributes(nameDer)
    .map((a) => `${SHORT_NAMES[a.type] ?? a.type}=${escapeValue(a.value)}`)
    .join(", ");
}

function escapeValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, "\\ ");
}

export function commonNameOf(nameDer: Uint8Array): string | undefined {
  return nameAttributes(nameDer).find((a) => a.type === OID_COMMON_NAME)?.value;
}
