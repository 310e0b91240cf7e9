/** The types of the two custom resources, in one import: what they share, and each kind's shapes. */
export * from "./common";
export type * from "./secure-database";
export type * from "./imaging-connection";
