/** The two custom resources: names, types, typed loading, validation and defaulting. */
export * from "./types";
export * from "./duration";
export {
  DecodeError,
  decodeCustomResource,
  decodeImagingConnection,
  decodeSecureDatabase,
  type CustomResource,
  type DecodeOptions,
  type Decoder,
  type Shape,
} from "./decode";
export * from "./validate";
export * from "./defaults";
