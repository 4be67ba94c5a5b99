export {
  LayerdiskError,
  Qcow2Error,
  Ext4Error,
  NativeError,
  InvalidArgumentError,
  RegistryError,
} from "./errors.js";
export type { LayerdiskErrorDetails } from "./errors.js";
// Only registry names that cannot clash with the image reader's types are
// exported here. The rest (Descriptor, Platform, ...) stay in ./registry/index.js.
export { pullImage, parseReference, formatReference } from "./registry/index.js";
export type {
  PullOptions,
  PulledImage,
  PulledLayer,
  PullProgress,
  ImageReference,
  RegistryCredentials,
  RegistryClientOptions,
} from "./registry/index.js";
