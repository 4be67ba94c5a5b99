export {
  LayerdiskError,
  Qcow2Error,
  Ext4Error,
  NativeError,
  InvalidArgumentError,
  RegistryError,
} from "./errors.js";
export type { LayerdiskErrorDetails } from "./errors.js";
export * from "./registry/index.js";
