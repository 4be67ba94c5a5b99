/**
 * The conversion parameters that shape a layer file's bytes. Layers made
 * with different parameters, or by a different converter version, live in
 * different folders, so they never mix in one chain.
 */

import { createHash } from "node:crypto";

/**
 * Version of the bytes the converter writes. Bump it whenever a change to
 * the qcow2 or ext4 writer changes the output for the same input.
 */
export const CONVERTER_FORMAT_VERSION = 1;

export const DEFAULT_FS_SIZE = 64 * 1024 ** 3;
export const DEFAULT_CLUSTER_SIZE = 64 * 1024;

/** ext4 features the writer enables; part of the parameters hash. */
export const EXT4_FEATURES = [
  "has_journal",
  "ext_attr",
  "dir_index",
  "filetype",
  "extent",
  "64bit",
  "flex_bg",
  "sparse_super",
  "large_file",
  "huge_file",
  "dir_nlink",
  "extra_isize",
  "metadata_csum",
] as const;

export interface ConversionParameters {
  /** Virtual size of the ext4 filesystem and of every qcow2 file, in bytes. */
  fsSize: number;
  /** qcow2 cluster size in bytes. */
  clusterSize: number;
  converterVersion: number;
  ext4Features: readonly string[];
}

export function conversionParameters(options: { fsSize?: number; clusterSize?: number } = {}): ConversionParameters {
  return {
    fsSize: options.fsSize ?? DEFAULT_FS_SIZE,
    clusterSize: options.clusterSize ?? DEFAULT_CLUSTER_SIZE,
    converterVersion: CONVERTER_FORMAT_VERSION,
    ext4Features: EXT4_FEATURES,
  };
}

/** Returns a short stable id for a parameter set: 16 hex digits of a SHA-256. */
export function parametersId(parameters: ConversionParameters): string {
  const canonical = JSON.stringify({
    fsSize: parameters.fsSize,
    clusterSize: parameters.clusterSize,
    converterVersion: parameters.converterVersion,
    ext4Features: [...parameters.ext4Features].sort(),
  });
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}
