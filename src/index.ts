export {
  LayerdiskError,
  Qcow2Error,
  Ext4Error,
  NativeError,
  InvalidArgumentError,
} from "./errors.js";
export type { LayerdiskErrorDetails } from "./errors.js";
export { Qcow2Chain, createImage, imageInfo } from "./qcow2/index.js";
export type { CreateImageOptions, FlattenOptions, ImageFormat, ImageInfo, OpenChainOptions } from "./qcow2/index.js";
