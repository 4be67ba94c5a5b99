import type { Timespec } from "./time.js";

export type TarEntryType =
  | "file"
  | "directory"
  | "symlink"
  | "hardlink"
  | "character-device"
  | "block-device"
  | "fifo";

/** A run of file bytes at `offset` in the real (unsparsed) file. */
export interface DataChunk {
  offset: number;
  data: Buffer;
}

/**
 * One member of a tar archive after PAX, GNU long-name and GNU sparse
 * records are applied.
 *
 * Names, link names and xattr names are byte strings: each character is one
 * byte of the archive (`Buffer.from(name, "latin1")` returns the exact bytes),
 * so names that are not valid UTF-8 survive unchanged.
 */
export interface TarEntry {
  name: string;
  type: TarEntryType;
  /** Permission bits including setuid, setgid and sticky (mask 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Real size of a file in bytes, holes included; 0 for other types. */
  size: number;
  /** Symlink target or hardlink target name. */
  linkname?: string;
  mtime: Timespec;
  atime?: Timespec;
  devmajor: number;
  devminor: number;
  /** Extended attributes from `SCHILY.xattr.*` and `LIBARCHIVE.xattr.*`. */
  xattrs: Map<string, Buffer>;
  /** True for a GNU sparse file, whose data skips its holes. */
  sparse?: boolean;
  /**
   * Streams the file's data in ascending offset order, skipping holes. Read
   * it before asking for the next entry; unread data is skipped.
   */
  data(): AsyncIterable<DataChunk>;
}
