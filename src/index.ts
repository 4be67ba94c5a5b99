export {
  LayerdiskError,
  Qcow2Error,
  Ext4Error,
  NativeError,
  InvalidArgumentError,
} from "./errors.js";
export type { LayerdiskErrorDetails } from "./errors.js";

export { ImageError, TarError, LayerError } from "./errors.js";

export { resolveImage } from "./image/resolve.js";
export type { ResolveImageOptions } from "./image/resolve.js";
export { openLayer, readLayerEntries, applyImageLayer } from "./image/layer-stream.js";
export { chainIds } from "./image/digest.js";
export { hostPlatform, parsePlatform, formatPlatform } from "./image/platform.js";
export type { Platform } from "./image/platform.js";
export { parseReference } from "./image/reference.js";
export type { ImageReference, SourceKind } from "./image/reference.js";
export type { BlobLocation } from "./image/blob.js";
export type { Compression } from "./image/media-types.js";
export type { ContainerConfig, ImageConfig, ResolvedImage, ResolvedLayer } from "./image/types.js";

export { readTar } from "./tar/reader.js";
export type { DataChunk, TarEntry, TarEntryType } from "./tar/entry.js";
export type { Timespec } from "./tar/time.js";

export { applyLayer } from "./layer/apply.js";
export type { ApplyStats } from "./layer/apply.js";
export { toLayerEntry } from "./layer/entry.js";
export type { LayerEntry } from "./layer/entry.js";
export type { FileWriter, LayerTarget, NodeAttributes, NodeStat, NodeType } from "./layer/target.js";
export { MemoryTarget } from "./layer/memory-target.js";
export type { MemoryNode } from "./layer/memory-target.js";
export { renderListTree } from "./layer/list-tree.js";
export type { ListTreeOptions } from "./layer/list-tree.js";
