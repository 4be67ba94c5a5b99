/** JSON records the store keeps beside its layer and overlay files. */

import type { ContainerConfig } from "../image/types.js";
import type { ConversionParameters } from "./parameters.js";

export interface LayerRecord {
  /** `sha256:...` chain ID of this layer and every layer below it. */
  chainId: string;
  /** `sha256:...` digest of this layer's uncompressed tar. */
  diffId: string;
  /** Chain ID of the layer below, or null for the bottom layer. */
  parentChainId: string | null;
  parametersId: string;
  parameters: ConversionParameters;
  /** Bytes the layer's qcow2 file occupies. */
  fileBytes: number;
  createdAt: string;
}

/**
 * A merged layer file: the top layers of a chain flattened into one qcow2,
 * made when a VMM opens only a limited number of backing files.
 */
export interface MergedRecord {
  /** 64 hex digits of SHA-256 over the base and top chain IDs; the file is `merged-KEY.qcow2`. */
  key: string;
  parametersId: string;
  /** Chain ID of the kept layer the merged file is backed by, or null for a standalone file. */
  baseChainId: string | null;
  /** Chain IDs of the layers merged into the file, bottom to top. */
  chainIds: string[];
  /** Bytes the merged qcow2 file occupies. */
  fileBytes: number;
  createdAt: string;
}

/** An image pulled into the blob cache by `layerdisk pull`, whose blobs prune keeps. */
export interface PullRecord {
  /** The reference as the user gave it. */
  reference: string;
  /** The reference in full, such as `docker.io/library/alpine:latest`. */
  name: string;
  platform: string;
  indexDigest?: string;
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
  createdAt: string;
}

export interface ImageRecord {
  /** The reference as the user gave it. */
  reference: string;
  platform: string;
  manifestDigest: string;
  configDigest: string;
  /** Digests of the layer blobs as the manifest lists them, bottom to top. */
  layerDigests: string[];
  parametersId: string;
  /** Chain IDs, bottom to top. */
  chainIds: string[];
  /** Runtime settings: the `config` object of the image configuration. */
  config: ContainerConfig;
  createdAt: string;
}

export interface OverlayRecord {
  id: string;
  /** Absolute path of the writable qcow2 overlay. */
  disk: string;
  reference: string;
  parametersId: string;
  /** Chain ID of the image's top layer; the overlay shows that layer's filesystem. */
  topChainId: string;
  /** Key of the merged file the overlay is backed by, when a depth limit merged the top layers. */
  mergedKey?: string;
  createdAt: string;
}
