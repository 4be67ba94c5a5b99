import { closeSync, openSync, readSync } from "node:fs";

import { streamGzipMember } from "./archive.js";
import type { BlobLocation } from "./blob.js";

/** Reads up to `count` bytes from the start of a blob, to detect its format. */
export async function readBlobHead(location: BlobLocation, count: number): Promise<Buffer> {
  if (location.kind === "gzip-member") {
    for await (const chunk of streamGzipMember(location.file, location.member)) {
      if (chunk.length > 0) return chunk.subarray(0, count);
    }
    return Buffer.alloc(0);
  }

  const fd = openSync(location.file, "r");
  try {
    const head = Buffer.alloc(Math.min(count, location.length));
    readSync(fd, head, 0, head.length, location.offset);
    return head;
  } finally {
    closeSync(fd);
  }
}
