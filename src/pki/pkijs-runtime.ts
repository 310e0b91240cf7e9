/** The pkijs crypto engine, bound to Node's WebCrypto explicitly rather than through pkijs' global registry. */
import { webcrypto } from "node:crypto";
import * as pkijs from "pkijs";

export const pkijsEngine = new pkijs.CryptoEngine({ name: "node-webcrypto", crypto: webcrypto });
