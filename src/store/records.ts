/** JSON records the store keeps beside its layer and overlay files. */

import type { ConversionParameters } from "./parameters.js";

/** Runtime settings from the image config (`config` in the OCI image spec). */
export interface ImageConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  [field: string]: unknown;
}

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
  config: ImageConfig;
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
