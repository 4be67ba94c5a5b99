/**
 * Synchronous access to an ext4 filesystem inside a disk image, for the
 * layer applier. Every method returns at once, so a `worker_threads`
 * worker can apply tens of thousands of tar entries without awaiting.
 *
 * Paths are relative to the filesystem root and may be strings (UTF-8) or
 * Buffers (any bytes except `/` and NUL in a name, at most 255 bytes each).
 * Errors are `Ext4Error` with a stable `code` and the `path` at fault; a
 * failed operation changes nothing.
 */

import { callNativeSync, type NativeHandle } from "../native/binding.js";
import { ext4Native, type Ext4FileType, type NativeStat } from "./native.js";

export type { Ext4FileType } from "./native.js";

export type Ext4Path = string | Uint8Array;

/** A time in seconds since 1970 (negative before) plus nanoseconds. */
export interface Ext4Time {
  seconds: number;
  nanoseconds?: number;
}

export interface Ext4Attrs {
  /** Permission bits with setuid, setgid and sticky (`0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  atime: Ext4Time;
  mtime: Ext4Time;
  ctime: Ext4Time;
}

export interface Ext4FormatOptions {
  /** Filesystem size in bytes; the image file is sparse. Default 64 GiB. */
  size?: number | bigint;
  /** Source of the UUID and hash seed, such as the chain ID. */
  seed: string | Uint8Array;
  /** Seconds since 1970 recorded as the creation time. Default 0. */
  timestamp?: number;
  /** One inode per this many bytes. Default 16384. */
  bytesPerInode?: number;
  /** Layer file cluster size in bytes. Default 65536. */
  clusterSize?: number;
}

export interface Ext4OpenOptions {
  /** Layer file cluster size in bytes, for allocation. Default 65536. */
  clusterSize?: number;
}

export interface Ext4Stat {
  ino: number;
  type: Ext4FileType;
  /** Full mode: file type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atime: Ext4Time;
  mtime: Ext4Time;
  ctime: Ext4Time;
  /** Symlink target, for symlinks. */
  target?: Buffer;
  /** Device numbers, for device files. */
  rdev?: { major: number; minor: number };
}

export interface Ext4DirEntry {
  name: Buffer;
  ino: number;
  /** Directory entry type code: 1 file, 2 directory, 3 char, 4 block, 5 fifo, 6 socket, 7 symlink. */
  fileType: number;
}

export type Ext4SpecialKind =
  | { type: "char-device"; major: number; minor: number }
  | { type: "block-device"; major: number; minor: number }
  | { type: "fifo" }
  | { type: "socket" };

/** Byte length of the packed attributes the native side reads. */
const ATTRS_SIZE = 56;
const DEFAULT_SIZE = 64n << 30n;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFSOCK = 0o140000;

function pathBytes(path: Ext4Path): Buffer {
  return typeof path === "string" ? Buffer.from(path, "utf8") : Buffer.from(path.buffer, path.byteOffset, path.byteLength);
}

/** Packs attributes as the native side expects them (little-endian). */
export function packAttrs(attrs: Ext4Attrs): Buffer {
  const buffer = Buffer.alloc(ATTRS_SIZE);
  buffer.writeUInt32LE(attrs.mode & 0o7777, 0);
  buffer.writeUInt32LE(attrs.uid >>> 0, 4);
  buffer.writeUInt32LE(attrs.gid >>> 0, 8);
  const times = [attrs.atime, attrs.mtime, attrs.ctime];
  times.forEach((time, i) => {
    buffer.writeBigInt64LE(BigInt(Math.trunc(time.seconds)), 16 + 8 * i);
    buffer.writeUInt32LE(time.nanoseconds ?? 0, 40 + 4 * i);
  });
  return buffer;
}

function toStat(raw: NativeStat): Ext4Stat {
  const stat: Ext4Stat = {
    ino: raw.ino,
    type: raw.type,
    mode: raw.mode,
    uid: raw.uid,
    gid: raw.gid,
    size: raw.size,
    nlink: raw.nlink,
    atime: { seconds: raw.atime, nanoseconds: raw.atimeNs },
    mtime: { seconds: raw.mtime, nanoseconds: raw.mtimeNs },
    ctime: { seconds: raw.ctime, nanoseconds: raw.ctimeNs },
  };
  if (raw.target !== undefined) stat.target = raw.target;
  if (raw.rdevMajor !== undefined && raw.rdevMinor !== undefined) stat.rdev = { major: raw.rdevMajor, minor: raw.rdevMinor };
  return stat;
}

export class Ext4Filesystem {
  private constructor(private readonly handle: NativeHandle) {}

  /** Creates (or overwrites) a raw image file holding a new, empty ext4. */
  static format(imagePath: string, options: Ext4FormatOptions): void {
    const seed = typeof options.seed === "string" ? Buffer.from(options.seed, "utf8") : pathBytes(options.seed);
    callNativeSync(() =>
      ext4Native().ext4Format(
        imagePath,
        BigInt(options.size ?? DEFAULT_SIZE),
        seed,
        options.timestamp ?? 0,
        options.bytesPerInode ?? 16384,
        options.clusterSize ?? 65536,
      ),
    );
  }

  /** Opens the ext4 filesystem in a raw image file for changes. */
  static open(imagePath: string, options: Ext4OpenOptions = {}): Ext4Filesystem {
    const handle = callNativeSync(() => ext4Native().ext4Open(imagePath, options.clusterSize ?? 65536));
    return new Ext4Filesystem(handle);
  }

  /**
   * Formats ext4 over the whole virtual disk of the qcow2 file `top` and
   * opens it. Every backing file must resolve inside `allowedDir`.
   */
  static formatLayer(top: string, allowedDir: string, options: Omit<Ext4FormatOptions, "size" | "timestamp">): Ext4Filesystem {
    const seed = typeof options.seed === "string" ? Buffer.from(options.seed, "utf8") : pathBytes(options.seed);
    const handle = callNativeSync(() =>
      ext4Native().layerFormat(top, allowedDir, seed, options.bytesPerInode ?? 16384, options.clusterSize ?? 65536),
    );
    return new Ext4Filesystem(handle);
  }

  /**
   * Opens the ext4 filesystem held by the qcow2 chain under `top`; changes
   * are written into `top` alone. Every backing file must resolve inside `allowedDir`.
   */
  static openLayer(top: string, allowedDir: string, options: Ext4OpenOptions = {}): Ext4Filesystem {
    const handle = callNativeSync(() => ext4Native().layerOpen(top, allowedDir, options.clusterSize ?? 65536));
    return new Ext4Filesystem(handle);
  }

  /** Writes every change to the image and flushes it. */
  commit(): void {
    callNativeSync(() => ext4Native().ext4Commit(this.handle));
  }

  /** Closes the image, dropping changes not committed. */
  close(): void {
    callNativeSync(() => ext4Native().ext4Close(this.handle));
  }

  /** Creates a directory, or sets the attributes of the existing one. */
  mkdir(path: Ext4Path, attrs: Ext4Attrs): number {
    return callNativeSync(() => ext4Native().ext4Mkdir(this.handle, pathBytes(path), packAttrs(attrs)));
  }

  /** Creates a symlink, replacing what `path` named. */
  symlink(path: Ext4Path, target: Ext4Path, attrs: Ext4Attrs): number {
    return callNativeSync(() => ext4Native().ext4Symlink(this.handle, pathBytes(path), pathBytes(target), packAttrs(attrs)));
  }

  /** Adds `path` as another name of the non-directory at `existing`. */
  link(path: Ext4Path, existing: Ext4Path): void {
    callNativeSync(() => ext4Native().ext4Link(this.handle, pathBytes(path), pathBytes(existing)));
  }

  /** Creates a device file, FIFO or socket. */
  mknod(path: Ext4Path, kind: Ext4SpecialKind, attrs: Ext4Attrs): number {
    const codes = { "char-device": S_IFCHR, "block-device": S_IFBLK, fifo: S_IFIFO, socket: S_IFSOCK } as const;
    const major = "major" in kind ? kind.major : 0;
    const minor = "minor" in kind ? kind.minor : 0;
    return callNativeSync(() => ext4Native().ext4Mknod(this.handle, pathBytes(path), codes[kind.type], major, minor, packAttrs(attrs)));
  }

  /** Starts a regular file; follow with `writeFile`/`skipFile` and `finishFile`. */
  beginFile(path: Ext4Path, attrs: Ext4Attrs): void {
    callNativeSync(() => ext4Native().ext4FileBegin(this.handle, pathBytes(path), packAttrs(attrs)));
  }

  /** Appends bytes to the open file. Whole blocks of zeros stay sparse. */
  writeFile(data: Uint8Array): void {
    callNativeSync(() => ext4Native().ext4FileWrite(this.handle, pathBytes(data)));
  }

  /** Appends a hole of `length` bytes to the open file. */
  skipFile(length: number | bigint): void {
    callNativeSync(() => ext4Native().ext4FileSkip(this.handle, length));
  }

  /** Links the open file at its path, replacing what was there. */
  finishFile(): number {
    return callNativeSync(() => ext4Native().ext4FileFinish(this.handle));
  }

  /** Drops the open file and everything allocated for it. */
  abortFile(): void {
    callNativeSync(() => ext4Native().ext4FileAbort(this.handle));
  }

  /** Writes a whole regular file from memory. */
  writeWholeFile(path: Ext4Path, attrs: Ext4Attrs, data: Uint8Array): number {
    this.beginFile(path, attrs);
    try {
      this.writeFile(data);
    } catch (error) {
      this.abortFile();
      throw error;
    }
    return this.finishFile();
  }

  /** Removes an entry; a directory goes with everything below it. */
  remove(path: Ext4Path): void {
    callNativeSync(() => ext4Native().ext4Remove(this.handle, pathBytes(path)));
  }

  /** Removes everything inside a directory (an opaque directory). */
  clearDirectory(path: Ext4Path): void {
    callNativeSync(() => ext4Native().ext4ClearDir(this.handle, pathBytes(path)));
  }

  setAttrs(path: Ext4Path, attrs: Ext4Attrs): void {
    callNativeSync(() => ext4Native().ext4SetAttrs(this.handle, pathBytes(path), packAttrs(attrs)));
  }

  /** Sets an xattr by full name; POSIX ACLs come in the xattr format (version 2). */
  setXattr(path: Ext4Path, name: Ext4Path, value: Uint8Array): void {
    callNativeSync(() => ext4Native().ext4SetXattr(this.handle, pathBytes(path), pathBytes(name), pathBytes(value)));
  }

  /** Removes an xattr; returns whether it existed. */
  removeXattr(path: Ext4Path, name: Ext4Path): boolean {
    return callNativeSync(() => ext4Native().ext4RemoveXattr(this.handle, pathBytes(path), pathBytes(name)));
  }

  xattrs(path: Ext4Path): { name: Buffer; value: Buffer }[] {
    return callNativeSync(() => ext4Native().ext4Xattrs(this.handle, pathBytes(path)));
  }

  /** Describes an entry without following a final symlink; `null` if missing. */
  lstat(path: Ext4Path): Ext4Stat | null {
    const raw = callNativeSync(() => ext4Native().ext4Lstat(this.handle, pathBytes(path)));
    return raw === null ? null : toStat(raw);
  }

  /** Lists a directory without `.` and `..`. */
  readDir(path: Ext4Path): Ext4DirEntry[] {
    return callNativeSync(() => ext4Native().ext4ReadDir(this.handle, pathBytes(path)));
  }

  /**
   * Resolves every symlink in `path` inside the image, with the image root
   * as `/`. Missing components are kept, so the result also names where a
   * new entry would go.
   */
  resolveSymlinks(path: Ext4Path): Buffer {
    return callNativeSync(() => ext4Native().ext4ResolveSymlinks(this.handle, pathBytes(path)));
  }

  /** Reads a whole regular file into memory. */
  readFile(path: Ext4Path): Buffer {
    return callNativeSync(() => ext4Native().ext4ReadFile(this.handle, pathBytes(path)));
  }
}
