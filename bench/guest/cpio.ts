/**
 * A writer for the "newc" cpio format (magic 070701) that the Linux
 * initramfs unpacker reads. Every header field is 8 ASCII hex digits. The
 * header plus name, and each file's data, are padded to a multiple of 4 bytes.
 * Timestamps are 0 and inode numbers count up from 1, so the same entries
 * always give the same bytes.
 */

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const HEADER_SIZE = 110;
const TRAILER_NAME = "TRAILER!!!";

/** One archive member. Paths are relative, without a leading `/`. */
export type CpioEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; data: Uint8Array | string; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "chardev"; path: string; major: number; minor: number; mode?: number };

interface RawEntry {
  name: string;
  mode: number;
  data: Uint8Array;
  rdevMajor: number;
  rdevMinor: number;
}

function hex8(value: number): string {
  return value.toString(16).padStart(8, "0");
}

function padding(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function toRaw(entry: CpioEntry): RawEntry {
  const base = { name: entry.path, data: new Uint8Array(), rdevMajor: 0, rdevMinor: 0 };
  switch (entry.type) {
    case "dir":
      return { ...base, mode: S_IFDIR | (entry.mode ?? 0o755) };
    case "file": {
      const data = typeof entry.data === "string" ? Buffer.from(entry.data, "utf8") : entry.data;
      return { ...base, mode: S_IFREG | (entry.mode ?? 0o644), data };
    }
    case "symlink":
      return { ...base, mode: S_IFLNK | 0o777, data: Buffer.from(entry.target, "utf8") };
    case "chardev":
      return { ...base, mode: S_IFCHR | (entry.mode ?? 0o600), rdevMajor: entry.major, rdevMinor: entry.minor };
  }
}

function encodeMember(raw: RawEntry, inode: number): Buffer[] {
  const name = Buffer.from(`${raw.name}\0`, "utf8");
  const isDir = (raw.mode & 0o170000) === S_IFDIR;
  const fields = [
    inode,
    raw.mode,
    0, // uid
    0, // gid
    isDir ? 2 : 1, // nlink
    0, // mtime
    raw.data.length,
    0, // devmajor
    0, // devminor
    raw.rdevMajor,
    raw.rdevMinor,
    name.length,
    0, // check, unused by newc
  ];
  const header = Buffer.from(`070701${fields.map(hex8).join("")}`, "ascii");
  return [header, name, padding(HEADER_SIZE + name.length), Buffer.from(raw.data), padding(raw.data.length)];
}

/** Encodes `entries` in order, followed by the trailer, as one newc archive. */
export function encodeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((entry, index) => parts.push(...encodeMember(toRaw(entry), index + 1)));
  const trailer: RawEntry = { name: TRAILER_NAME, mode: 0, data: new Uint8Array(), rdevMajor: 0, rdevMinor: 0 };
  parts.push(...encodeMember(trailer, 0));
  return Buffer.concat(parts);
}
