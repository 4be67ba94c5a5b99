// The public API of layerdisk. createChain is the main entry point; the
// qcow2, ext4, image and registry modules are exported for embedders that
// need the lower layers.

export {
  LayerdiskError,
  Qcow2Error,
  Ext4Error,
  NativeError,
  InvalidArgumentError,
  RegistryError,
  ImageError,
  TarError,
  LayerError,
} from "./errors.js";
export type { LayerdiskErrorDetails } from "./errors.js";

export { createChain } from "./chain/create.js";
export type { CreateChainOptions, CreateChainResult } from "./chain/create.js";
export type { ChainProgress, ChainResult, LayerState } from "./chain/types.js";
export { createOverlay, resetOverlay, deleteOverlay } from "./chain/overlay.js";
export { exportChain } from "./chain/export.js";
export type { ExportOptions } from "./chain/export.js";
export { pullToStore } from "./chain/pull.js";
export type { PullToStoreOptions } from "./chain/pull.js";
export type { RegistryOptions } from "./chain/open-image.js";
export { classifyReference, REGISTRY_PREFIX } from "./chain/source.js";
export type { ImageSource } from "./chain/source.js";
export { MAX_DEPTH_PRESETS, resolveMaxDepth } from "./chain/depth.js";
export type { MaxDepthPreset } from "./chain/depth.js";
export { vmmRecipes, ROOT_KERNEL_OPTIONS } from "./vmm/recipes.js";
export type { VmmRecipes } from "./vmm/recipes.js";

export { Store } from "./store/store.js";
export { defaultStoreRoot } from "./store/location.js";
export { prune } from "./store/prune.js";
export type { PruneResult } from "./store/prune.js";
export { verifyStore } from "./store/verify.js";
export type { CheckOutcome, VerifyResult } from "./store/verify.js";
export type { ImageRecord, LayerRecord, MergedRecord, OverlayRecord, PullRecord } from "./store/records.js";

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

export { resolveImage } from "./image/resolve.js";
export type { ResolveImageOptions } from "./image/resolve.js";
export { hostPlatform, parsePlatform, formatPlatform } from "./image/platform.js";
export type { Platform } from "./image/platform.js";
export type { ContainerConfig, ImageConfig, ResolvedImage, ResolvedLayer } from "./image/types.js";
export type { LayerTarget } from "./layer/target.js";

export { pullImage, parseReference as parseRegistryReference, formatReference } from "./registry/index.js";
export type {
  PullOptions,
  PulledImage,
  PulledLayer,
  PullProgress,
  ImageReference as RegistryImageReference,
  RegistryCredentials,
  RegistryClientOptions,
  TlsOptions as RegistryTlsOptions,
} from "./registry/index.js";
