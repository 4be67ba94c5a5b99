/** Parsing of command-line values: sizes, and usage errors. */

import { readFileSync } from "node:fs";

import { LayerdiskError } from "../errors.js";

/** A mistake in the command line; the CLI exits with status 2. */
export class UsageError extends LayerdiskError {
  constructor(message: string) {
    super("ERR_USAGE", message);
  }
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Parses a byte size such as `65536`, `64K`, `64KiB` or `64G` (binary units). */
export function parseSize(option: string, text: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new UsageError(`invalid size "${text}" for ${option}: use bytes or a number with K, M, G or T (binary units)`);
  }
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`size "${text}" for ${option} is too large`);
  return bytes;
}

export interface RegistryFlags {
  "insecure-registry"?: string[];
  "https-registry"?: string[];
  "ca-file"?: string[];
}

/** Turns the registry flags of `create` and `pull` into registry client options. */
export function registryOptions(flags: RegistryFlags): {
  insecureRegistries?: string[];
  httpsRegistries?: string[];
  tls?: { ca: Buffer[] };
} {
  const ca = (flags["ca-file"] ?? []).map((file) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new UsageError(`cannot read --ca-file ${file}: ${(error as Error).message}`);
    }
  });
  return {
    insecureRegistries: flags["insecure-registry"],
    httpsRegistries: flags["https-registry"],
    ...(ca.length > 0 ? { tls: { ca } } : {}),
  };
}
