/**
 * X.501 names: the common-name-only subjects we issue, and any name as text for messages and status
 * ("CN=app, O=Acme", RFC 4514 as @peculiar/x509 renders it) or its common name for the renewal policy.
 */
import { AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName } from "@peculiar/asn1-x509";
import { Name as NameText } from "@peculiar/x509";
import { OID_COMMON_NAME } from "./oids";

/** Short names @peculiar/x509 does not know by itself. */
const EXTRA_SHORT_NAMES = { SERIALNUMBER: "2.5.4.5", STREET: "2.5.4.9", UID: "0.9.2342.19200300.100.1.1" };

// X.520 PrintableString alphabet: where it suffices we use it (what OpenSSL does), otherwise UTF8String.
// Both reach PostgreSQL as the exact bytes of the name, which is what `cert` authentication compares.
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A Name holding only a common name. */
export function commonNameOnly(commonName: string): Name {
  const value = new AttributeValue(PRINTABLE.test(commonName) ? { printableString: commonName } : { utf8String: commonName });
  return new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: OID_COMMON_NAME, value })])]);
}

/** RFC 4514-style text, most significant RDN first as encoded: "CN=app, O=Acme". */
export function nameToString(name: Name): string {
  return new NameText(name, EXTRA_SHORT_NAMES).toString();
}

export function commonNameOf(name: Name): string | undefined {
  for (const rdn of name) {
    for (const attribute of rdn) if (attribute.type === OID_COMMON_NAME) return attribute.value.toString();
  }
  return undefined;
}
