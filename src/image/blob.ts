import { closeSync, createReadStream, fstatSync, openSync, readSync } from "node:fs";
import { Readable } from "node:stream";

import { ImageError } from "../errors.js";
import { streamGzipMember, tooLarge } from "./archive.js";

/**
 * Location of a blob's bytes on disk. It is plain data, so a resolved image
 * can be sent to a worker thread with `postMessage` and its layers opened there.
 */
export type BlobLocation =
  /** A whole file, or a byte range of an uncompressed archive. */
  | { kind: "file"; file: string; offset: number; length: number }
  /** A member of a gzip-compressed archive, read by decompressing from the start. */
  | { kind: "gzip-member"; file: string; member: string; length: number };

/** Opens a stream of a blob's bytes. */
export function openBlob(location: BlobLocation): Readable {
  if (location.kind === "gzip-member") return Readable.from(streamGzipMember(location.file, location.member));
  if (location.length === 0) return Readable.from([]);
  return createReadStream(location.file, {
    start: location.offset,
    end: location.offset + location.length - 1,
    highWaterMark: 1 << 20,
  });
}

/** Reads a small blob, such as a manifest or config, into memory. */
export async function readBlob(location: BlobLocation, maxBytes: number, digest?: string): Promise<Buffer> {
  if (location.length > maxBytes) throw tooLarge(location.file, digest ?? "blob", location.length, maxBytes);
  if (location.kind === "gzip-member") {
    const parts: Buffer[] = [];
    for await (const chunk of streamGzipMember(location.file, location.member, maxBytes)) parts.push(chunk);
    return Buffer.concat(parts);
  }

  const fd = openSync(location.file, "r");
  try {
    const data = Buffer.alloc(location.length);
    const read = readSync(fd, data, 0, location.length, location.offset);
    return data.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/** Returns the location of a whole file, or `undefined` when it does not exist. */
export function fileLocation(file: string): BlobLocation | undefined {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ImageError("ERR_IMAGE_READ", `Cannot open ${file}: ${(error as Error).message}`, { file, cause: error });
  }
  try {
    return { kind: "file", file, offset: 0, length: fstatSync(fd).size };
  } finally {
    closeSync(fd);
  }
}
