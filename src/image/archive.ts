import { closeSync, openSync, readSync } from "node:fs";
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";

import { ImageError, LayerdiskError } from "../errors.js";
import { decodePaxRecords } from "../tar/pax.js";
import { readTar } from "../tar/reader.js";

/** One member of an image archive (`docker save` or `oci-archive` tar). */
export interface ArchiveMember {
  name: string;
  type: "file" | "directory" | "symlink" | "hardlink" | "other";
  /** Byte offset of the data in the tar file; only for uncompressed archives. */
  offset: number;
  size: number;
  linkname?: string;
}

/** The members of an image archive by clean name, and whether the tar is gzip-compressed. */
export interface ArchiveIndex {
  file: string;
  gzip: boolean;
  members: Map<string, ArchiveMember>;
}

const BLOCK = 512;
/** Bound on one PAX or GNU long-name header in an image archive. */
const MAX_LONG_HEADER = 1 << 20;

/** Strips `./` and `/` prefixes and a trailing slash, so names compare as written in manifests. */
export function cleanMemberName(name: string): string {
  return name.replace(/^(\.?\/)+/, "").replace(/\/+$/, "");
}

/**
 * Lists the members of an image archive. An uncompressed tar is indexed by
 * reading its headers only, so members can later be read in place; a gzip
 * tar is read through once.
 */
export async function indexArchive(file: string): Promise<ArchiveIndex> {
  const fd = openFile(file);
  try {
    const head = Buffer.alloc(2);
    readSync(fd, head, 0, 2, 0);
    const gzip = head[0] === 0x1f && head[1] === 0x8b;
    if (!gzip) return { file, gzip: false, members: indexPlainArchive(fd, file) };
  } finally {
    closeSync(fd);
  }
  return { file, gzip: true, members: await indexGzipArchive(file) };
}

/** Follows symlinks between members (docker save links `ID/layer.tar` to `SHA.tar`). */
export function findMember(index: ArchiveIndex, name: string): ArchiveMember | undefined {
  let clean = cleanMemberName(name);
  for (let follows = 0; follows < 40; follows++) {
    const member = index.members.get(clean);
    if (member === undefined || (member.type !== "symlink" && member.type !== "hardlink")) return member;
    const link = member.linkname ?? "";
    const base = member.type === "symlink" && !link.startsWith("/") ? clean.split("/").slice(0, -1) : [];
    clean = resolveRelative(base, link);
  }
  return undefined;
}

function resolveRelative(base: string[], link: string): string {
  const parts = [...base];
  for (const part of link.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

/** Reads the whole data of a member of a gzip archive, for small JSON files. */
export async function readGzipMember(file: string, name: string, maxBytes: number): Promise<Buffer> {
  for await (const chunk of streamGzipMember(file, name, maxBytes)) return chunk;
  return Buffer.alloc(0);
}

/**
 * Streams one member of a gzip archive by decompressing from the start.
 * NOTE: each call reads the archive up to that member again, so a gzip
 * archive with many large layers costs one pass per layer.
 */
export async function* streamGzipMember(file: string, name: string, maxBytes = Infinity): AsyncGenerator<Buffer> {
  const source = createReadStream(file).pipe(createGunzip());
  for await (const entry of readTar(source, { file })) {
    if (cleanMemberName(entry.name) !== name) continue;
    if (entry.size > maxBytes) throw tooLarge(file, name, entry.size, maxBytes);
    if (maxBytes !== Infinity) {
      const parts: Buffer[] = [];
      for await (const chunk of entry.data()) parts.push(chunk.data);
      yield Buffer.concat(parts);
      return;
    }
    for await (const chunk of entry.data()) yield chunk.data;
    return;
  }
  throw new ImageError("ERR_IMAGE_NOT_FOUND", `${name} not found in archive ${file}.`, { file, path: name });
}

export function tooLarge(file: string, name: string, size: number, maxBytes: number): ImageError {
  return new ImageError("ERR_IMAGE_TOO_LARGE", `${name} in ${file} is ${size} bytes; the limit is ${maxBytes}.`, { file, path: name });
}

async function indexGzipArchive(file: string): Promise<Map<string, ArchiveMember>> {
  const members = new Map<string, ArchiveMember>();
  const source = createReadStream(file).pipe(createGunzip());
  for await (const entry of readTar(source, { file })) {
    const type = entry.type === "file" || entry.type === "directory" || entry.type === "symlink" || entry.type === "hardlink" ? entry.type : "other";
    const member: ArchiveMember = { name: cleanMemberName(entry.name), type, offset: -1, size: entry.size };
    if (entry.linkname !== undefined) member.linkname = entry.linkname;
    members.set(member.name, member);
  }
  return members;
}

/**
 * Walks ustar headers with positioned reads and skips the data. Handles the
 * PAX `path`, `linkpath` and `size` records and GNU `L`/`K` long names,
 * which is all an image archive needs to locate its members.
 */
function indexPlainArchive(fd: number, file: string): Map<string, ArchiveMember> {
  const members = new Map<string, ArchiveMember>();
  const header = Buffer.alloc(BLOCK);
  let position = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();

  for (;;) {
    if (readSync(fd, header, 0, BLOCK, position) < BLOCK) throw invalidArchive(file, position, "truncated header");
    if (header.every((b) => b === 0)) break;
    checkChecksum(header, file, position);

    const type = String.fromCharCode(header[156] as number);
    let size = Number(pax.get("size") ?? parseNumber(header, 124, 12, file, position));
    const dataOffset = position + BLOCK;
    position = dataOffset + Math.ceil(size / BLOCK) * BLOCK;

    if (type === "x" || type === "L" || type === "K") {
      if (size > MAX_LONG_HEADER) throw invalidArchive(file, dataOffset, `extended header of ${size} bytes`);
      const body = Buffer.alloc(size);
      readSync(fd, body, 0, size, dataOffset);
      if (type === "x") pax = new Map(decodePaxRecords(body).map((r) => [r.key, r.value.toString("latin1")]));
      else if (type === "L") longName = cString(body, 0, size);
      else longLink = cString(body, 0, size);
      continue;
    }
    if (type === "g") continue;

    const name = pax.get("path") ?? longName ?? ustarName(header);
    const linkname = pax.get("linkpath") ?? longLink ?? cString(header, 157, 100);
    size = type === "0" || type === "\0" || type === "7" ? size : 0;
    const member: ArchiveMember = { name: cleanMemberName(name), type: memberType(type), offset: dataOffset, size };
    if (linkname !== "") member.linkname = linkname;
    members.set(member.name, member);
    pax = new Map();
    longName = undefined;
    longLink = undefined;
  }
  return members;
}

function memberType(flag: string): ArchiveMember["type"] {
  if (flag === "0" || flag === "\0" || flag === "7") return "file";
  if (flag === "5") return "directory";
  if (flag === "2") return "symlink";
  if (flag === "1") return "hardlink";
  return "other";
}

function ustarName(header: Buffer): string {
  const name = cString(header, 0, 100);
  const magic = header.toString("latin1", 257, 263);
  const prefix = magic === "ustar\u000000" || magic === "ustar\u0000" ? cString(header, 345, 155) : "";
  return prefix === "" ? name : `${prefix}/${name}`;
}

function cString(buffer: Buffer, offset: number, length: number): string {
  const end = buffer.indexOf(0, offset);
  return buffer.toString("latin1", offset, end === -1 || end > offset + length ? offset + length : end);
}

/** Parses an octal field, or a base-256 one (GNU: high bit of the first byte set). */
function parseNumber(header: Buffer, offset: number, length: number, file: string, position: number): number {
  if ((header[offset] as number) & 0x80) {
    let value = 0;
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + (header[i] as number);
    return value;
  }
  const text = cString(header, offset, length).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw invalidArchive(file, position, `invalid number "${text}"`);
  return parseInt(text, 8);
}

/** ustar checksum: the byte sum of the header with the checksum field read as spaces. */
function checkChecksum(header: Buffer, file: string, position: number): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
  if (sum !== parseNumber(header, 148, 8, file, position)) throw invalidArchive(file, position, "header checksum mismatch");
}

function invalidArchive(file: string, offset: number, problem: string): ImageError {
  return new ImageError("ERR_IMAGE_INVALID_ARCHIVE", `Invalid image archive ${file}: ${problem} at byte ${offset}.`, { file, offset });
}

function openFile(file: string): number {
  try {
    return openSync(file, "r");
  } catch (error) {
    if (error instanceof LayerdiskError) throw error;
    throw new ImageError("ERR_IMAGE_NOT_FOUND", `Cannot open image archive ${file}: ${(error as Error).message}`, { file, cause: error });
  }
}
