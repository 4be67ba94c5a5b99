import { Readable } from "node:stream";
import tarStream from "tar-stream";

import { LayerdiskError, TarError } from "../errors.js";
import type { DataChunk, TarEntry, TarEntryType } from "./entry.js";
import { decodePaxRecords, type PaxRecord } from "./pax.js";
import { checkSparseMap, parseSparseMap10, readSparseInfo, type SparseInfo, type SparseSegment } from "./sparse.js";
import { parsePaxTime, type Timespec } from "./time.js";
import { readXattrs } from "./xattrs.js";

/** Key under which the PAX record list is stored in tar-stream's `header.pax`. */
const RECORDS = Symbol("paxRecords");

interface PaxFields {
  [key: string]: string | PaxRecord[];
  [RECORDS]: PaxRecord[];
}

/** The parts of tar-stream's private extractor state that `hookPax` replaces. */
interface ExtractInternals {
  _header: { type: string; name: string } | null;
  _pax: PaxFields | null;
  _paxGlobal: PaxFields | null;
  _decodeLongHeader(body: Buffer): void;
}

const TYPES: Record<string, TarEntryType> = {
  file: "file",
  "contiguous-file": "file",
  directory: "directory",
  symlink: "symlink",
  link: "hardlink",
  "character-device": "character-device",
  "block-device": "block-device",
  fifo: "fifo",
};

/** Options for `readTar`. */
export interface ReadTarOptions {
  /** File name used in error messages. */
  file?: string;
}

/**
 * Parses a tar stream (ustar, PAX, GNU) into entries, one at a time.
 *
 * tar-stream reads the headers, with its PAX decoder replaced so that values
 * keep their raw bytes (see `hookPax`). This module adds the parts that
 * tar-stream leaves out: PAX `uid`, `gid`, `mtime` and `atime`, xattrs and
 * GNU sparse files.
 */
export async function* readTar(
  source: AsyncIterable<Buffer> | Readable,
  options: ReadTarOptions = {},
): AsyncGenerator<TarEntry> {
  const extract = tarStream.extract({ filenameEncoding: "latin1", allowUnknownFormat: true } as never);
  hookPax(extract as unknown as ExtractInternals);

  const input = source instanceof Readable ? source : Readable.from(source);
  input.on("error", (error) => extract.destroy(error));
  input.pipe(extract as unknown as NodeJS.WritableStream);

  try {
    for await (const stream of extract) {
      const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      yield toEntry(stream.header as unknown as RawHeader, chunks, options.file);

      // Skip the data the caller left unread through the same iterator,
      // because closing an entry stream early destroys tar-stream's extractor.
      while (!(await chunks.next()).done);
    }
  } catch (error) {
    throw wrapError(error, options.file);
  } finally {
    input.unpipe(extract as unknown as NodeJS.WritableStream);
    input.destroy();
    extract.destroy();
  }
}

interface RawHeader {
  name: string;
  type: string | null;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  pax: PaxFields | null;
}

function toEntry(header: RawHeader, chunks: AsyncIterator<Buffer>, file: string | undefined): TarEntry {
  const records = header.pax?.[RECORDS] ?? [];
  const fields = new Map(records.map((r) => [r.key, r.value.toString("latin1")]));
  const type = header.type === null ? undefined : TYPES[header.type];
  if (type === undefined) {
    throw new TarError("ERR_TAR_UNSUPPORTED_TYPE", `Unsupported tar entry type "${header.type}" for ${header.name}.`, {
      path: header.name,
    });
  }

  const sparse = type === "file" ? readSparseInfo(records, header.name) : undefined;
  const name = sparse?.name ?? header.name;
  const mtime = paxTime(fields, "mtime", name) ?? headerTime(header, name);
  const atime = paxTime(fields, "atime", name);

  const entry: TarEntry = {
    name,
    type,
    mode: header.mode & 0o7777,
    uid: paxId(fields, "uid", name) ?? header.uid,
    gid: paxId(fields, "gid", name) ?? header.gid,
    size: type === "file" ? (sparse?.realSize ?? header.size) : 0,
    mtime,
    devmajor: header.devmajor,
    devminor: header.devminor,
    xattrs: readXattrs(records),
    data: () => wrapErrors(sparse === undefined ? wholeData(chunks) : sparseData(chunks, sparse, header.size, name), file),
  };
  if (header.linkname !== null && header.linkname !== "") entry.linkname = header.linkname;
  if (atime !== undefined) entry.atime = atime;
  if (sparse !== undefined) entry.sparse = true;
  return entry;
}

/** Converts errors raised while reading an entry's data into the same codes as header errors. */
async function* wrapErrors(chunks: AsyncGenerator<DataChunk>, file: string | undefined): AsyncGenerator<DataChunk> {
  try {
    yield* chunks;
  } catch (error) {
    throw wrapError(error, file);
  }
}

async function* wholeData(chunks: AsyncIterator<Buffer>): AsyncGenerator<DataChunk> {
  let offset = 0;
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
    yield { offset, data: next.value };
    offset += next.value.length;
  }
}

/** Spreads the stored runs of a sparse file over their offsets. */
async function* sparseData(
  chunks: AsyncIterator<Buffer>,
  info: SparseInfo,
  storedSize: number,
  path: string,
): AsyncGenerator<DataChunk> {
  let map: SparseSegment[] = info.map;
  let pending: Buffer = Buffer.alloc(0);
  let dataSize = storedSize;

  if (info.format === "1.0") {
    // The map precedes the data, so read until it parses.
    for (;;) {
      const parsed = parseSparseMap10(pending, path);
      if (parsed !== undefined) {
        map = parsed.map;
        pending = pending.subarray(parsed.headerLength);
        dataSize = storedSize - parsed.headerLength;
        break;
      }
      const next = await chunks.next();
      if (next.done) throw new TarError("ERR_TAR_INVALID_SPARSE", `Invalid GNU sparse entry: truncated map.`, { path });
      pending = Buffer.concat([pending, next.value]);
    }
  }
  checkSparseMap(map, info.realSize, dataSize, path);

  for (const segment of map) {
    let offset = segment.offset;
    let remaining = segment.length;
    while (remaining > 0) {
      if (pending.length === 0) {
        const next = await chunks.next();
        if (next.done) throw new TarError("ERR_TAR_TRUNCATED", `Sparse file data ends early.`, { path });
        pending = next.value;
      }
      const piece = pending.subarray(0, Math.min(remaining, pending.length));
      pending = pending.subarray(piece.length);
      yield { offset, data: piece };
      offset += piece.length;
      remaining -= piece.length;
    }
  }
}

function headerTime(header: RawHeader, path: string): Timespec {
  const ms = header.mtime.getTime();
  if (!Number.isFinite(ms)) throw new TarError("ERR_TAR_INVALID_HEADER", `Invalid mtime in tar header.`, { path });
  return { sec: ms / 1000, nsec: 0 };
}

function paxTime(fields: Map<string, string>, key: string, path: string): Timespec | undefined {
  const text = fields.get(key);
  if (text === undefined) return undefined;
  const time = parsePaxTime(text);
  if (time === undefined) {
    throw new TarError("ERR_TAR_INVALID_PAX", `Invalid PAX ${key} value "${text}".`, { path });
  }
  return time;
}

function paxId(fields: Map<string, string>, key: string, path: string): number | undefined {
  const text = fields.get(key);
  if (text === undefined) return undefined;
  const id = /^[0-9]{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(id <= 0xffffffff)) throw new TarError("ERR_TAR_INVALID_PAX", `Invalid PAX ${key} value "${text}".`, { path });
  return id;
}

/**
 * Replaces tar-stream's PAX decoder on one extractor. tar-stream 3.x decodes
 * each record value as UTF-8, which corrupts binary xattr values and names
 * that are not UTF-8, and keeps only the last of repeated keys.
 *
 * NOTE: this uses tar-stream's private fields (`_header`, `_pax`,
 * `_paxGlobal`, `_decodeLongHeader`), checked against tar-stream 3.3.
 * The tar tests cover it, so an incompatible upgrade fails them.
 */
function hookPax(extract: ExtractInternals): void {
  const original = extract._decodeLongHeader;
  if (typeof original !== "function") {
    throw new TarError("ERR_TAR_UNSUPPORTED_DEPENDENCY", "The installed tar-stream has no _decodeLongHeader; install tar-stream 3.3.");
  }

  extract._decodeLongHeader = function decodeLongHeader(this: ExtractInternals, body: Buffer): void {
    const type = this._header?.type;
    if (type !== "pax-header" && type !== "pax-global-header") {
      original.call(this, body);
      return;
    }

    const records = decodePaxRecords(body, this._header?.name);
    if (type === "pax-global-header") {
      this._paxGlobal = toFields(mergeRecords([], records));
      return;
    }
    const global = this._paxGlobal?.[RECORDS] ?? [];
    this._pax = toFields(mergeRecords(global, records));
  };
}

/**
 * Appends `records` to `earlier`. POSIX pax: a record with an empty value
 * deletes the keyword, so it drops earlier records of that key instead of
 * adding one. This is why an empty `SCHILY.xattr.*` value sets no xattr.
 */
function mergeRecords(earlier: PaxRecord[], records: PaxRecord[]): PaxRecord[] {
  let merged = [...earlier];
  for (const record of records) {
    if (record.value.length === 0) merged = merged.filter((r) => r.key !== record.key);
    else merged.push(record);
  }
  return merged;
}

/** Builds the object tar-stream reads `path`, `linkpath` and `size` from. */
function toFields(records: PaxRecord[]): PaxFields {
  const fields = { [RECORDS]: records } as PaxFields;
  for (const { key, value } of records) {
    const text = value.toString("latin1");
    if ((key === "path" || key === "linkpath") && text.includes("\0")) {
      throw new TarError("ERR_TAR_INVALID_PAX", `PAX ${key} contains a NUL byte.`);
    }
    fields[key] = text;
  }
  return fields;
}

function wrapError(error: unknown, file: string | undefined): unknown {
  if (error instanceof LayerdiskError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const details = file === undefined ? { cause: error } : { cause: error, file };
  // tar-stream reports a stream that ends inside an entry or header this way.
  if (message === "Unexpected end of data") return new TarError("ERR_TAR_TRUNCATED", "Tar archive ends before its last entry is complete.", details);
  return new TarError("ERR_TAR_INVALID", `Invalid tar archive: ${message}`, details);
}
