import type { Timespec } from "../tar/time.js";

/** File types a layer can create, named as in `list-tree` and `stat`. */
export type NodeType = "file" | "directory" | "symlink" | "character-device" | "block-device" | "fifo";

/** Ownership, permissions and times of one inode. */
export interface NodeAttributes {
  /** Permission bits including setuid, setgid and sticky (mask 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: Timespec;
  /** Defaults to `mtime` when absent. */
  atime?: Timespec;
}

/** Type, permissions and owner of an existing path, as `LayerTarget.lstat` returns them. */
export interface NodeStat {
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
}

/** Receives the data of one regular file being created. */
export interface FileWriter {
  /** Writes `data` at byte `offset`. Calls come in ascending, non-overlapping order; gaps are holes. */
  write(offset: number, data: Buffer): void;
  /** Completes the file; its size is the one given to `createFile`. */
  close(): void;
}

/**
 * The filesystem a layer is applied to. Every call is synchronous so that a
 * native writer can implement it directly inside a worker thread.
 *
 * Paths are absolute byte strings (`/a/b`, each character one byte; see
 * `TarEntry`). The applier has already resolved every path: parents exist
 * and are directories, and no symlink is followed. Creating calls are made
 * only for a path that does not exist.
 */
export interface LayerTarget {
  lstat(path: string): NodeStat | undefined;
  readlink(path: string): string;
  /** Names of a directory's children, without `.` and `..`. */
  readdir(path: string): string[];
  mkdir(path: string, attributes: NodeAttributes): void;
  createFile(path: string, attributes: NodeAttributes, size: number): FileWriter;
  symlink(path: string, target: string, attributes: NodeAttributes): void;
  /** Adds `path` as another name of the inode at `existingPath`, which is not a directory. */
  link(path: string, existingPath: string): void;
  mknod(path: string, type: "character-device" | "block-device" | "fifo", attributes: NodeAttributes, major: number, minor: number): void;
  /** Changes the given attributes of an existing path, without following a symlink. */
  setAttributes(path: string, attributes: Partial<NodeAttributes>): void;
  /** Replaces all extended attributes of a path with `xattrs`. */
  setXattrs(path: string, xattrs: Map<string, Buffer>): void;
  /** Removes a path, with everything below it when it is a directory. */
  remove(path: string): void;
}
