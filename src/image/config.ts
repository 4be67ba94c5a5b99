import { ImageError } from "../errors.js";
import { checkDigest } from "./digest.js";
import type { ImageConfig } from "./types.js";

/** Parses and checks an image config: its `rootfs` must list one valid diff ID per layer. */
export function parseConfig(data: Buffer, digest: string): ImageConfig {
  const config = parseJson(data, `config ${digest}`, digest) as Partial<ImageConfig>;
  const rootfs = config.rootfs;
  if (typeof rootfs !== "object" || rootfs === null || rootfs.type !== "layers" || !Array.isArray(rootfs.diff_ids)) {
    throw new ImageError("ERR_IMAGE_INVALID_CONFIG", `Config ${digest} has no rootfs of type "layers" with diff_ids.`, { digest });
  }
  rootfs.diff_ids.forEach((diffId, i) => checkDigest(diffId, `config ${digest} rootfs.diff_ids[${i}]`));
  if (typeof config.os !== "string" || typeof config.architecture !== "string") {
    throw new ImageError("ERR_IMAGE_INVALID_CONFIG", `Config ${digest} has no os or architecture.`, { digest });
  }
  return config as ImageConfig;
}

/** Parses JSON from a blob, raising `ERR_IMAGE_INVALID_JSON` with the blob's name. */
export function parseJson(data: Buffer, source: string, digest?: string): unknown {
  try {
    const value: unknown = JSON.parse(data.toString("utf8"));
    if (typeof value !== "object" || value === null) throw new Error("not a JSON object");
    return value;
  } catch (error) {
    const details = digest === undefined ? { cause: error } : { cause: error, digest };
    throw new ImageError("ERR_IMAGE_INVALID_JSON", `Invalid JSON in ${source}: ${(error as Error).message}`, details);
  }
}
