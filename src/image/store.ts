import { join } from "node:path";

import { findMember, indexArchive, type ArchiveIndex } from "./archive.js";
import { fileLocation, type BlobLocation } from "./blob.js";
import { digestHex } from "./digest.js";

/** Files of an image on disk, in a directory or an archive, found by their path in it. */
export interface ImageFiles {
  /** The directory or archive, for messages. */
  readonly file: string;
  locate(name: string): BlobLocation | undefined;
}

/** Path of a blob in an OCI layout: `blobs/<algorithm>/<encoded>` (image-spec, image-layout.md). */
export function blobPath(digest: string): string {
  return `blobs/${digest.slice(0, digest.indexOf(":"))}/${digestHex(digest)}`;
}

export class DirectoryFiles implements ImageFiles {
  constructor(readonly file: string) {}

  locate(name: string): BlobLocation | undefined {
    return fileLocation(join(this.file, name));
  }
}

export class ArchiveFiles implements ImageFiles {
  private constructor(private readonly index: ArchiveIndex) {}

  static async open(file: string): Promise<ArchiveFiles> {
    return new ArchiveFiles(await indexArchive(file));
  }

  get file(): string {
    return this.index.file;
  }

  has(name: string): boolean {
    return findMember(this.index, name) !== undefined;
  }

  locate(name: string): BlobLocation | undefined {
    const member = findMember(this.index, name);
    if (member === undefined || member.type !== "file") return undefined;
    if (this.index.gzip) return { kind: "gzip-member", file: this.index.file, member: member.name, length: member.size };
    return { kind: "file", file: this.index.file, offset: member.offset, length: member.size };
  }
}
