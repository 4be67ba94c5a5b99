import type { BlobLocation } from "./blob.js";
import type { Compression } from "./media-types.js";
import type { Platform } from "./platform.js";
import type { SourceKind } from "./reference.js";

/** OCI image-spec, config.md: the execution parameters of `config.config`. */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

/** OCI image-spec, config.md: an image configuration, with unknown fields kept. */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  config?: ContainerConfig;
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: Array<Record<string, unknown>>;
  [field: string]: unknown;
}

/** One layer of a resolved image. Plain data, so it can be posted to a worker thread. */
export interface ResolvedLayer {
  /** Position from the bottom, starting at 0. */
  index: number;
  mediaType: string;
  compression: Compression;
  /**
   * Digest of the blob as stored. A legacy `docker save` archive records
   * none, and then this is absent and only `diffId` is checked.
   */
  digest?: string;
  /** Size of the blob as stored, in bytes. */
  size: number;
  /** Digest of the uncompressed tar, from the config's `rootfs.diff_ids`. */
  diffId: string;
  /** OCI chain ID of this layer and all below it. */
  chainId: string;
  location: BlobLocation;
}

/** An image found on disk with its manifest and config read and verified. */
export interface ResolvedImage {
  /** Where the image came from; `registry` for one pulled by createChain. */
  source: SourceKind | "registry";
  /** The OCI layout directory or archive file; for a pulled image, its full reference. */
  file: string;
  /** Absent for a legacy `docker save` archive, which has no manifest blob. */
  manifestDigest?: string;
  manifestMediaType?: string;
  configDigest: string;
  config: ImageConfig;
  platform: Platform;
  diffIds: string[];
  chainIds: string[];
  layers: ResolvedLayer[];
  /** The manifest exactly as read, whose SHA-256 is `manifestDigest`; absent for a legacy archive. */
  manifestBytes?: Buffer;
  /** The config exactly as read, whose SHA-256 is `configDigest`. */
  configBytes?: Buffer;
}
