import { Transform, type TransformCallback } from "node:stream";
import * as zlib from "node:zlib";

import { Decompress } from "fzstd";

import type { Compression } from "./media-types.js";

/**
 * Decodes zstd with fzstd, a pure-JavaScript decoder, because Node 20's
 * zlib has no zstd. It keeps one window (at most the frame's window size,
 * 8 MiB for layers written by the zstd CLI's default levels) in memory.
 */
export class ZstdDecompressStream extends Transform {
  private readonly decoder = new Decompress((chunk) => {
    // fzstd hands out a new array for each block, so a view is safe to keep.
    this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  });

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.decoder.push(chunk);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.decoder.push(new Uint8Array(0), true);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}

type ZstdFactory = () => Transform;

/** Node 22.15 and later have zstd in zlib; prefer it, being native. */
const nativeZstd = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;

/** Returns a stream that decompresses `compression`, or a pass-through for `none`. */
export function createDecompressor(compression: Compression): Transform {
  switch (compression) {
    case "gzip":
      return zlib.createGunzip();
    case "zstd":
      return nativeZstd !== undefined ? nativeZstd() : new ZstdDecompressStream();
    case "none":
      return new Transform({ transform: (chunk, _encoding, callback) => callback(null, chunk) });
  }
}
