import { createHash } from "node:crypto";

import { ImageError } from "../errors.js";

/**
 * OCI image-spec, descriptor.md "Digests": `algorithm:encoded`. sha256 (64
 * lowercase hex digits) and sha512 (128) are the registered algorithms.
 */
const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Returns `digest` when it is a valid sha256 or sha512 digest, else raises `ERR_IMAGE_INVALID_DIGEST`. */
export function checkDigest(digest: unknown, where: string): string {
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest)) {
    throw new ImageError("ERR_IMAGE_INVALID_DIGEST", `Invalid digest ${JSON.stringify(digest)} in ${where}; expected sha256:<64 hex digits>.`);
  }
  return digest;
}

/** Returns the hash algorithm of a checked digest, as `node:crypto` names it. */
export function digestAlgorithm(digest: string): "sha256" | "sha512" {
  return digest.startsWith("sha512:") ? "sha512" : "sha256";
}

/** Returns the part of a checked digest after the colon. */
export function digestHex(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1);
}

export function sha256Digest(data: Buffer | string): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

/**
 * Computes the chain ID of each layer prefix. OCI image-spec, config.md
 * "Layer ChainID": ChainID(L1) = DiffID(L1), and
 * ChainID(L1..Ln) = sha256(ChainID(L1..Ln-1) + " " + DiffID(Ln)).
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const chain: string[] = [];
  for (const diffId of diffIds) {
    const previous = chain.at(-1);
    chain.push(previous === undefined ? diffId : sha256Digest(`${previous} ${diffId}`));
  }
  return chain;
}
