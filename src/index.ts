export {
  LayerdiskError,
  Qcow2Error,
  Ext4Error,
  NativeError,
  InvalidArgumentError,
} from "./errors.js";
export type { LayerdiskErrorDetails } from "./errors.js";
