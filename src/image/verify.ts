import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

import { ImageError } from "../errors.js";
import { digestAlgorithm } from "./digest.js";

export interface VerifyOptions {
  /** Expected digest of the bytes that pass through. */
  digest: string;
  /** Expected byte count, when known. */
  size?: number;
  /** Name of the bytes in messages, such as "config" or "layer 0 blob". */
  subject: string;
  /** File the bytes come from, for messages. */
  file?: string;
}

/**
 * A pass-through stream that hashes and counts the bytes it passes and, at
 * the end, raises an error instead of ending if the digest or size differ.
 * A stream longer than `size` fails as soon as it goes past it.
 */
export class VerifyStream extends Transform {
  private readonly hash: Hash;
  private count = 0;

  constructor(private readonly options: VerifyOptions) {
    super();
    this.hash = createHash(digestAlgorithm(options.digest));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.count += chunk.length;
    const { size } = this.options;
    if (size !== undefined && this.count > size) {
      callback(sizeMismatch(this.options, `more than ${size}`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const { size, digest } = this.options;
    if (size !== undefined && this.count !== size) {
      callback(sizeMismatch(this.options, String(this.count)));
      return;
    }
    const actual = `${digest.slice(0, digest.indexOf(":"))}:${this.hash.digest("hex")}`;
    if (actual !== digest) {
      callback(digestMismatch(this.options, actual));
      return;
    }
    callback();
  }
}

/** Checks a small blob held in memory, such as a manifest or config. */
export function verifyBuffer(data: Buffer, options: VerifyOptions): void {
  if (options.size !== undefined && data.length !== options.size) throw sizeMismatch(options, String(data.length));
  const actual = `${digestAlgorithm(options.digest)}:${createHash(digestAlgorithm(options.digest)).update(data).digest("hex")}`;
  if (actual !== options.digest) throw digestMismatch(options, actual);
}

function sizeMismatch(options: VerifyOptions, actual: string): ImageError {
  return new ImageError(
    "ERR_IMAGE_SIZE_MISMATCH",
    `Size mismatch for ${options.subject} ${options.digest}: expected ${options.size} bytes, got ${actual}.`,
    details(options),
  );
}

function digestMismatch(options: VerifyOptions, actual: string): ImageError {
  return new ImageError(
    "ERR_IMAGE_DIGEST_MISMATCH",
    `Digest mismatch for ${options.subject}: expected ${options.digest}, got ${actual}.`,
    details(options),
  );
}

function details(options: VerifyOptions): { digest: string; file?: string } {
  return options.file === undefined ? { digest: options.digest } : { digest: options.digest, file: options.file };
}
