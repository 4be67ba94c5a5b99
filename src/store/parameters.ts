/**
 * The conversion parameters that shape a layer file's bytes. Layers made
 * with different parameters, or by a different converter version, live in
 * different folders, so they never mix in one chain.
 */

import { createHash } from "node:crypto";

import { LayerdiskError } from "../errors.js";

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

/** Smallest filesystem the ext4 writer formats: 8 MiB. */
export const MIN_FS_SIZE = 8 * 1024 ** 2;

/**
 * Largest filesystem accepted: 1 TiB. Formatting writes metadata for every
 * flex group, so its cost grows with the size: on a 2-core machine a 64 GiB
 * base layer took 1 s and 8 MiB, a 1 TiB one 16 s and 79 MiB.
 */
export const MAX_FS_SIZE = 1024 ** 4;

const MIN_CLUSTER_SIZE = 512;
const MAX_CLUSTER_SIZE = 2 * 1024 ** 2;
const EXT4_BLOCK_SIZE = 4096;

function invalid(message: string): LayerdiskError {
  return new LayerdiskError("ERR_INVALID_ARG_VALUE", message);
}

/** Rejects sizes the qcow2 engine or the ext4 writer cannot use, naming the fix. */
function checkSizes(fsSize: number, clusterSize: number): void {
  if (!Number.isSafeInteger(fsSize) || fsSize < MIN_FS_SIZE || fsSize > MAX_FS_SIZE || fsSize % EXT4_BLOCK_SIZE !== 0) {
    throw invalid(`invalid filesystem size ${fsSize}: use a multiple of 4 KiB from 8 MiB to 1 TiB, such as 64G`);
  }
  const powerOfTwo = Number.isSafeInteger(clusterSize) && clusterSize > 0 && (clusterSize & (clusterSize - 1)) === 0;
  if (!powerOfTwo || clusterSize < MIN_CLUSTER_SIZE || clusterSize > MAX_CLUSTER_SIZE) {
    throw invalid(`invalid cluster size ${clusterSize}: use a power of two from 512 bytes to 2 MiB, such as 64K`);
  }
}

export function conversionParameters(options: { fsSize?: number; clusterSize?: number } = {}): ConversionParameters {
  const fsSize = options.fsSize ?? DEFAULT_FS_SIZE;
  const clusterSize = options.clusterSize ?? DEFAULT_CLUSTER_SIZE;
  checkSizes(fsSize, clusterSize);
  return {
    fsSize,
    clusterSize,
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
