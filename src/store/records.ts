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
  /** Chain ID of the layer file the overlay is backed by. */
  topChainId: string;
  createdAt: string;
}
