import { createHash, type Hash } from "node:crypto";

import { LayerError } from "../errors.js";
import type { Timespec } from "../tar/time.js";
import type { FileWriter, LayerTarget, NodeAttributes, NodeStat, NodeType } from "./target.js";

/** One inode of a `MemoryTarget`; hardlinks are several names for one object. */
export interface MemoryNode {
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  mtime: Timespec;
  atime: Timespec;
  xattrs: Map<string, Buffer>;
  /** Children of a directory, by name. */
  children?: Map<string, MemoryNode>;
  /** Target of a symlink. */
  target?: string;
  major?: number;
  minor?: number;
  /** Size of a file in bytes, holes included. */
  size?: number;
  /** Hex SHA-256 of a file's content, holes read as zeros. */
  sha256?: string;
  /** Byte ranges of a file that were written; the rest are holes. */
  extents?: Array<{ offset: number; length: number }>;
  /** Content of a file no larger than `MemoryTarget.keepContentBytes`. */
  content?: Buffer;
}

const ZEROS = Buffer.alloc(1 << 20);

/**
 * A `LayerTarget` that keeps the tree in memory, for tests. File content is
 * hashed as it arrives and kept only for small files, so an image of any
 * size fits. Writes must come in ascending offset order.
 */
export class MemoryTarget implements LayerTarget {
  readonly root: MemoryNode = newNode("directory", { mode: 0o755, uid: 0, gid: 0, mtime: { sec: 0, nsec: 0 } });

  constructor(readonly keepContentBytes = 64 * 1024) {
    this.root.children = new Map();
  }

  lookup(path: string): MemoryNode | undefined {
    let node: MemoryNode | undefined = this.root;
    for (const name of path.split("/")) {
      if (name === "") continue;
      node = node?.children?.get(name);
      if (node === undefined) return undefined;
    }
    return node;
  }

  lstat(path: string): NodeStat | undefined {
    const node = this.lookup(path);
    return node === undefined ? undefined : { type: node.type, mode: node.mode, uid: node.uid, gid: node.gid };
  }

  readlink(path: string): string {
    const node = this.existing(path);
    if (node.target === undefined) throw targetError("ERR_MEMORY_NOT_SYMLINK", `${path} is not a symlink`, path);
    return node.target;
  }

  readdir(path: string): string[] {
    return [...this.directory(path).keys()];
  }

  mkdir(path: string, attributes: NodeAttributes): void {
    const node = newNode("directory", attributes);
    node.children = new Map();
    this.insert(path, node);
  }

  createFile(path: string, attributes: NodeAttributes, size: number): FileWriter {
    const node = newNode("file", attributes);
    node.size = size;
    node.extents = [];
    this.insert(path, node);
    return new MemoryFileWriter(node, size <= this.keepContentBytes ? Buffer.alloc(size) : undefined);
  }

  symlink(path: string, target: string, attributes: NodeAttributes): void {
    const node = newNode("symlink", attributes);
    node.target = target;
    this.insert(path, node);
  }

  link(path: string, existingPath: string): void {
    const node = this.existing(existingPath);
    if (node.type === "directory") throw targetError("ERR_MEMORY_LINK_DIRECTORY", `${existingPath} is a directory`, path);
    this.insert(path, node);
  }

  mknod(path: string, type: "character-device" | "block-device" | "fifo", attributes: NodeAttributes, major: number, minor: number): void {
    const node = newNode(type, attributes);
    if (type !== "fifo") {
      node.major = major;
      node.minor = minor;
    }
    this.insert(path, node);
  }

  setAttributes(path: string, attributes: Partial<NodeAttributes>): void {
    const node = this.existing(path);
    if (attributes.mode !== undefined) node.mode = attributes.mode;
    if (attributes.uid !== undefined) node.uid = attributes.uid;
    if (attributes.gid !== undefined) node.gid = attributes.gid;
    if (attributes.mtime !== undefined) node.mtime = attributes.mtime;
    if (attributes.atime !== undefined) node.atime = attributes.atime;
    else if (attributes.mtime !== undefined) node.atime = attributes.mtime;
  }

  setXattrs(path: string, xattrs: Map<string, Buffer>): void {
    this.existing(path).xattrs = new Map(xattrs);
  }

  remove(path: string): void {
    const slash = path.lastIndexOf("/");
    const parent = this.directory(path.slice(0, slash) || "/");
    parent.delete(path.slice(slash + 1));
  }

  private existing(path: string): MemoryNode {
    const node = this.lookup(path);
    if (node === undefined) throw targetError("ERR_MEMORY_NOT_FOUND", `${path} does not exist`, path);
    return node;
  }

  private directory(path: string): Map<string, MemoryNode> {
    const children = this.existing(path).children;
    if (children === undefined) throw targetError("ERR_MEMORY_NOT_DIRECTORY", `${path} is not a directory`, path);
    return children;
  }

  private insert(path: string, node: MemoryNode): void {
    const slash = path.lastIndexOf("/");
    const parent = this.directory(path.slice(0, slash) || "/");
    const name = path.slice(slash + 1);
    if (parent.has(name)) throw targetError("ERR_MEMORY_EXISTS", `${path} already exists`, path);
    parent.set(name, node);
  }
}

class MemoryFileWriter implements FileWriter {
  private readonly hash: Hash = createHash("sha256");
  private position = 0;

  constructor(
    private readonly node: MemoryNode,
    private readonly content: Buffer | undefined,
  ) {}

  write(offset: number, data: Buffer): void {
    if (offset < this.position) {
      throw targetError("ERR_MEMORY_WRITE_ORDER", `write at ${offset} is before ${this.position}`, "");
    }
    this.hashZeros(offset - this.position);
    this.hash.update(data);
    this.content?.set(data, offset);

    const last = this.node.extents?.at(-1);
    if (last !== undefined && last.offset + last.length === offset) last.length += data.length;
    else this.node.extents?.push({ offset, length: data.length });
    this.position = offset + data.length;
  }

  close(): void {
    this.hashZeros((this.node.size ?? 0) - this.position);
    this.node.sha256 = this.hash.digest("hex");
    if (this.content !== undefined) this.node.content = this.content;
  }

  private hashZeros(count: number): void {
    for (let left = count; left > 0; left -= ZEROS.length) {
      this.hash.update(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
    }
  }
}

function newNode(type: NodeType, attributes: NodeAttributes): MemoryNode {
  return {
    type,
    mode: attributes.mode,
    uid: attributes.uid,
    gid: attributes.gid,
    mtime: attributes.mtime,
    atime: attributes.atime ?? attributes.mtime,
    xattrs: new Map(),
  };
}

function targetError(code: string, what: string, path: string): LayerError {
  return new LayerError(code, `In-memory target: ${what}.`, { path });
}

