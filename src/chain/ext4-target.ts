/**
 * The layer applier's target backed by the native ext4 writer, working on
 * the qcow2 layer file being converted. Used inside the conversion worker.
 */

import { Ext4Filesystem, type Ext4Attrs, type Ext4FileType } from "../ext4/index.js";
import type { FileWriter, LayerTarget, NodeAttributes, NodeStat, NodeType } from "../layer/target.js";
import type { Timespec } from "../tar/time.js";
import type { ConvertJob } from "./convert-job.js";

/**
 * One inode per this many bytes of filesystem: mke2fs's default for
 * filesystems over 512 MiB (`inode_ratio` 16384 in mke2fs.conf).
 */
const BYTES_PER_INODE = 16384;

/** LayerTarget paths are byte strings, one character per byte. */
function bytes(path: string): Buffer {
  return Buffer.from(path, "latin1");
}

function nodeType(type: Ext4FileType): NodeType {
  switch (type) {
    case "char-device":
      return "character-device";
    case "file":
    case "directory":
    case "symlink":
    case "block-device":
    case "fifo":
      return type;
    default:
      // Sockets cannot come from a tar; anything else is a non-directory.
      return "file";
  }
}

function time(value: Timespec): { seconds: number; nanoseconds: number } {
  return { seconds: value.sec, nanoseconds: value.nsec };
}

/**
 * Converts applier attributes to ext4 ones. A tar records no ctime, so the
 * mtime is used for it. The extraction time would make the bytes differ
 * between runs.
 */
function ext4Attributes(attributes: NodeAttributes): Ext4Attrs {
  return {
    mode: attributes.mode,
    uid: attributes.uid,
    gid: attributes.gid,
    atime: time(attributes.atime ?? attributes.mtime),
    mtime: time(attributes.mtime),
    ctime: time(attributes.mtime),
  };
}

class Ext4FileWriter implements FileWriter {
  private position = 0;

  constructor(
    private readonly filesystem: Ext4Filesystem,
    private readonly size: number,
  ) {}

  write(offset: number, data: Buffer): void {
    if (offset > this.position) this.filesystem.skipFile(offset - this.position);
    this.filesystem.writeFile(data);
    this.position = offset + data.length;
  }

  close(): void {
    if (this.size > this.position) this.filesystem.skipFile(this.size - this.position);
    this.filesystem.finishFile();
  }
}

export class Ext4Target implements LayerTarget {
  /**
   * Results of earlier `lstat` calls, `null` for a missing path. The applier
   * looks up every parent of every entry, about ten lookups an entry, so
   * most lookups hit. Every call that changes a path drops its entry, and
   * the entries below it when a directory goes away or is replaced.
   */
  private readonly stats = new Map<string, NodeStat | null>();

  constructor(private readonly filesystem: Ext4Filesystem) {}

  lstat(path: string): NodeStat | undefined {
    const cached = this.stats.get(path);
    if (cached !== undefined) return cached ?? undefined;

    const stat = this.filesystem.lstat(bytes(path));
    const result = stat === null ? null : { type: nodeType(stat.type), mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
    this.stats.set(path, result);
    return result ?? undefined;
  }

  /**
   * Forgets `path`, and what is cached below it when it was a directory that
   * goes away. A path known to be missing or not a directory has nothing
   * cached below it but `null` entries, which stay true.
   */
  private forget(path: string, keepsChildren = false): void {
    const previous = this.stats.get(path);
    this.stats.delete(path);
    const mayHaveChildren = previous === undefined || previous?.type === "directory";
    if (keepsChildren || !mayHaveChildren) return;

    const prefix = path === "/" ? "/" : `${path}/`;
    for (const key of this.stats.keys()) {
      if (key.startsWith(prefix)) this.stats.delete(key);
    }
  }

  readlink(path: string): string {
    const stat = this.filesystem.lstat(bytes(path));
    if (stat?.target === undefined) throw new Error(`readlink: ${path} is not a symlink`);
    return stat.target.toString("latin1");
  }

  readdir(path: string): string[] {
    return this.filesystem.readDir(bytes(path)).map((entry) => entry.name.toString("latin1"));
  }

  mkdir(path: string, attributes: NodeAttributes): void {
    // mkdir over an existing directory keeps its children.
    this.forget(path, this.stats.get(path)?.type === "directory");
    this.filesystem.mkdir(bytes(path), ext4Attributes(attributes));
  }

  createFile(path: string, attributes: NodeAttributes, size: number): FileWriter {
    this.forget(path);
    this.filesystem.beginFile(bytes(path), ext4Attributes(attributes));
    return new Ext4FileWriter(this.filesystem, size);
  }

  symlink(path: string, target: string, attributes: NodeAttributes): void {
    this.forget(path);
    this.filesystem.symlink(bytes(path), bytes(target), ext4Attributes(attributes));
  }

  link(path: string, existingPath: string): void {
    this.forget(path);
    this.filesystem.link(bytes(path), bytes(existingPath));
  }

  mknod(
    path: string,
    type: "character-device" | "block-device" | "fifo",
    attributes: NodeAttributes,
    major: number,
    minor: number,
  ): void {
    this.forget(path);
    const kind =
      type === "fifo"
        ? ({ type: "fifo" } as const)
        : ({ type: type === "character-device" ? "char-device" : "block-device", major, minor } as const);
    this.filesystem.mknod(bytes(path), kind, ext4Attributes(attributes));
  }

  setAttributes(path: string, attributes: Partial<NodeAttributes>): void {
    this.forget(path, true);
    const stat = this.filesystem.lstat(bytes(path));
    if (stat === null) throw new Error(`setAttributes: ${path} does not exist`);
    const mtime = attributes.mtime ?? { sec: stat.mtime.seconds, nsec: stat.mtime.nanoseconds ?? 0 };
    this.filesystem.setAttrs(
      bytes(path),
      ext4Attributes({
        mode: attributes.mode ?? stat.mode & 0o7777,
        uid: attributes.uid ?? stat.uid,
        gid: attributes.gid ?? stat.gid,
        mtime,
        atime: attributes.atime ?? (attributes.mtime === undefined ? { sec: stat.atime.seconds, nsec: stat.atime.nanoseconds ?? 0 } : undefined),
      }),
    );
  }

  setXattrs(path: string, xattrs: Map<string, Buffer>): void {
    const target = bytes(path);
    for (const { name } of this.filesystem.xattrs(target)) {
      if (!xattrs.has(name.toString("latin1"))) this.filesystem.removeXattr(target, name);
    }
    for (const [name, value] of xattrs) this.filesystem.setXattr(target, bytes(name), value);
  }

  remove(path: string): void {
    this.forget(path);
    this.filesystem.remove(bytes(path));
  }
}

export interface LayerFilesystem {
  target: LayerTarget;
  commit(): void;
  close(): void;
}

/** Formats (bottom layer) or opens the filesystem in the job's layer file. */
export function openLayerFilesystem(job: ConvertJob): LayerFilesystem {
  const clusterSize = job.parameters.clusterSize;
  const filesystem =
    job.backingFile === null
      ? Ext4Filesystem.formatLayer(job.layerFile, job.allowedDir, { seed: job.chainId, bytesPerInode: BYTES_PER_INODE, clusterSize })
      : Ext4Filesystem.openLayer(job.layerFile, job.allowedDir, { clusterSize });
  return {
    target: new Ext4Target(filesystem),
    commit: () => filesystem.commit(),
    close: () => filesystem.close(),
  };
}
