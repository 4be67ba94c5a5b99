/** Parsing of command-line values: sizes, and usage errors. */

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
