/**
 * Types of the ext4 exports of the native addon. Only `src/ext4` uses them;
 * callers go through `Ext4Filesystem`.
 */

import type { NativeHandle } from "../native/binding.js";
import { native } from "../native/binding.js";

export interface NativeStat {
  ino: number;
  type: Ext4FileType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atime: number;
  atimeNs: number;
  mtime: number;
  mtimeNs: number;
  ctime: number;
  ctimeNs: number;
  target?: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
}

export type Ext4FileType = "file" | "directory" | "symlink" | "char-device" | "block-device" | "fifo" | "socket" | "unknown";

export interface Ext4Native {
  ext4Format(path: string, size: number | bigint, seed: Buffer, timestamp: number, bytesPerInode: number, clusterSize: number): void;
  ext4Open(path: string, clusterSize: number): NativeHandle;
  layerFormat(top: string, allowedDir: string, seed: Buffer, bytesPerInode: number, clusterSize: number): NativeHandle;
  layerOpen(top: string, allowedDir: string, clusterSize: number): NativeHandle;
  ext4Commit(fs: NativeHandle): void;
  ext4Close(fs: NativeHandle): void;
  ext4Mkdir(fs: NativeHandle, path: Buffer, attrs: Buffer): number;
  ext4Symlink(fs: NativeHandle, path: Buffer, target: Buffer, attrs: Buffer): number;
  ext4Link(fs: NativeHandle, path: Buffer, existing: Buffer): void;
  ext4Mknod(fs: NativeHandle, path: Buffer, fileType: number, major: number, minor: number, attrs: Buffer): number;
  ext4FileBegin(fs: NativeHandle, path: Buffer, attrs: Buffer): void;
  ext4FileWrite(fs: NativeHandle, data: Uint8Array): void;
  ext4FileSkip(fs: NativeHandle, length: number | bigint): void;
  ext4FileFinish(fs: NativeHandle): number;
  ext4FileAbort(fs: NativeHandle): void;
  ext4Remove(fs: NativeHandle, path: Buffer): void;
  ext4ClearDir(fs: NativeHandle, path: Buffer): void;
  ext4SetAttrs(fs: NativeHandle, path: Buffer, attrs: Buffer): void;
  ext4SetXattr(fs: NativeHandle, path: Buffer, name: Buffer, value: Buffer): void;
  ext4RemoveXattr(fs: NativeHandle, path: Buffer, name: Buffer): boolean;
  ext4Xattrs(fs: NativeHandle, path: Buffer): { name: Buffer; value: Buffer }[];
  ext4Lstat(fs: NativeHandle, path: Buffer): NativeStat | null;
  ext4ReadDir(fs: NativeHandle, path: Buffer): { name: Buffer; ino: number; fileType: number }[];
  ext4ReadFile(fs: NativeHandle, path: Buffer): Buffer;
  ext4ResolveSymlinks(fs: NativeHandle, path: Buffer): Buffer;
}

export function ext4Native(): Ext4Native {
  return native() as unknown as Ext4Native;
}
