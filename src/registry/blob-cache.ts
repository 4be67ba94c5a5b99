/**
 * The blob cache: verified blobs at `ROOT/blobs/sha256/HEX`, the layout of
 * both the chain store and an OCI image layout. A file exists under its
 * final name only after its digest and size were verified.
 */

import { join } from "node:path";

import { digestHex } from "../store/store.js";

/** Anything that maps a digest to the path of its cached file, such as a `Store`. */
export interface BlobCache {
  blobFile(digest: string): string;
}

/** Returns a cache for a folder path, or the given cache (such as a `Store`) unchanged. */
export function toBlobCache(cache: string | BlobCache): BlobCache {
  if (typeof cache !== "string") return cache;
  return { blobFile: (digest: string) => join(cache, "blobs", "sha256", digestHex(digest)) };
}
