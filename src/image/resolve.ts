import { existsSync, statSync } from "node:fs";

import { ImageError } from "../errors.js";
import { resolveDockerArchive } from "./docker-archive.js";
import { resolveOciImage } from "./oci.js";
import { hostPlatform, parsePlatform, type Platform } from "./platform.js";
import { parseReference, type ImageReference } from "./reference.js";
import { ArchiveFiles, DirectoryFiles } from "./store.js";
import type { ResolvedImage } from "./types.js";

export interface ResolveImageOptions {
  /** Platform to take from an index, as `os/arch[/variant]` or an object; defaults to this host's. */
  platform?: string | Platform;
}

/**
 * Finds an image on disk and reads and verifies its index, manifest and
 * config. Layer blobs are located but not read; `openLayer` streams and
 * verifies each one.
 */
export async function resolveImage(reference: string, options: ResolveImageOptions = {}): Promise<ResolvedImage> {
  const ref = parseReference(reference);
  const platform = typeof options.platform === "string" ? parsePlatform(options.platform) : (options.platform ?? hostPlatform());
  const kind = ref.kind ?? (isDirectory(ref.path) ? "oci-layout" : "archive");
  const selector = ref.digest !== undefined ? { digest: ref.digest } : ref.tag !== undefined ? { tag: ref.tag } : {};

  if (kind === "oci-layout") {
    if (!isDirectory(ref.path)) throw notFound(ref, "an OCI layout directory");
    return resolveOciImage(new DirectoryFiles(ref.path), "oci-layout", selector, platform);
  }

  if (!existsSync(ref.path)) throw notFound(ref, "an image archive");
  const files = await ArchiveFiles.open(ref.path);
  // `docker save` from Docker 25 on writes an OCI layout with index.json too.
  if (files.has("index.json") && files.has("oci-layout")) {
    return resolveOciImage(files, kind === "docker-archive" ? "docker-archive" : "oci-archive", selector, platform);
  }
  if (kind !== "oci-archive" && files.has("manifest.json")) return resolveDockerArchive(files, ref.imageName);
  throw new ImageError(
    "ERR_IMAGE_UNKNOWN_FORMAT",
    `${ref.path} is neither an OCI archive (index.json and oci-layout) nor a docker-archive (manifest.json).`,
    { file: ref.path },
  );
}

function notFound(ref: ImageReference, expected: string): ImageError {
  const problem = existsSync(ref.path) ? `is not ${expected}` : `does not exist; expected ${expected}`;
  return new ImageError("ERR_IMAGE_NOT_FOUND", `${ref.path} ${problem}.`, { file: ref.path });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

