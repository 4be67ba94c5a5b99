export {
  LayerdiskError,
  Qcow2Error,
  Ext4Error,
  NativeError,
  InvalidArgumentError,
  RegistryError,
} from "./errors.js";
export type { LayerdiskErrorDetails } from "./errors.js";
export { Qcow2Chain, createImage, imageInfo } from "./qcow2/index.js";
export type { CreateImageOptions, FlattenOptions, ImageFormat, ImageInfo, OpenChainOptions } from "./qcow2/index.js";
export { Ext4Filesystem, packAttrs } from "./ext4/index.js";
export type {
  Ext4Attrs,
  Ext4DirEntry,
  Ext4FileType,
  Ext4FormatOptions,
  Ext4OpenOptions,
  Ext4Path,
  Ext4SpecialKind,
  Ext4Stat,
  Ext4Time,
} from "./ext4/index.js";

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
