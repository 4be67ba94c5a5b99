import { createHash } from "node:crypto";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";

/** Root of the harness cache: kernels, initramfs archives and generated disks. */
export function guestCacheDir(): string {
  return process.env.LAYERDISK_CACHE ?? "/var/cache/layerdisk-guest";
}

/** Directory of the OCI test corpus built by the testdata script. */
export function testdataDir(): string {
  return process.env.LAYERDISK_TESTDATA ?? "/var/cache/layerdisk-testdata";
}

/** Returns a short hex key over the given parts, for cache file names. */
export function cacheKey(...parts: ReadonlyArray<string | Uint8Array>): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(typeof part === "string" ? Buffer.from(part, "utf8") : part);
    // A separator keeps ("ab", "c") and ("a", "bc") apart.
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

/** Creates and returns a subdirectory of the cache. */
export async function cacheSubdir(name: string): Promise<string> {
  const dir = path.join(guestCacheDir(), name);
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Builds `target` by letting `build` write a temporary sibling path, then
 * renames it into place, so an interrupted build never leaves a file that a
 * later run would take for a finished one.
 */
export async function buildAtomically(target: string, build: (temporary: string) => Promise<void>): Promise<void> {
  const temporary = `${target}.tmp-${process.pid}`;
  await rm(temporary, { recursive: true, force: true });
  try {
    await build(temporary);
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
}
