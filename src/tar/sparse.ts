import { TarError } from "../errors.js";
import type { PaxRecord } from "./pax.js";

/** One run of data in a sparse file; everything outside the runs is a hole. */
export interface SparseSegment {
  /** Byte offset in the real file. */
  offset: number;
  /** Length in bytes. */
  length: number;
}

/** A sparse file as described by GNU sparse PAX records. */
export interface SparseInfo {
  /** `0.0`, `0.1` or `1.0`, the GNU tar sparse format version. */
  format: "0.0" | "0.1" | "1.0";
  /** Real file name from `GNU.sparse.name`, as a byte string, if present. */
  name?: string;
  /** Size of the real file, holes included. */
  realSize: number;
  /** Data runs; for format 1.0 they are read from the start of the entry data. */
  map: SparseSegment[];
}

/** Bound on segments in one sparse map, so a hostile header cannot exhaust memory. */
export const MAX_SPARSE_SEGMENTS = 1 << 20;

/**
 * Reads the GNU sparse PAX records of one entry, or returns `undefined` when
 * the entry is not sparse.
 *
 * GNU tar manual, "Storing Sparse Files" (formats 0.0, 0.1 and 1.0):
 * - 0.0: `GNU.sparse.size` is the real size, then `GNU.sparse.offset` and
 *   `GNU.sparse.numbytes` repeat once per run.
 * - 0.1: `GNU.sparse.map` is `offset,size,offset,size,...`.
 * - 1.0: `GNU.sparse.major=1`, `GNU.sparse.minor=0`, `GNU.sparse.realsize`;
 *   the map is stored at the start of the entry data.
 * All three may carry the real name in `GNU.sparse.name`.
 */
export function readSparseInfo(records: PaxRecord[], path: string): SparseInfo | undefined {
  const fields = new Map<string, string>();
  const offsets: number[] = [];
  const lengths: number[] = [];

  for (const { key, value } of records) {
    if (!key.startsWith("GNU.sparse.")) continue;
    const text = value.toString("latin1");
    fields.set(key, text);
    if (key === "GNU.sparse.offset") offsets.push(parseNumber(text, key, path));
    if (key === "GNU.sparse.numbytes") lengths.push(parseNumber(text, key, path));
  }
  if (fields.size === 0) return undefined;

  const name = fields.get("GNU.sparse.name");
  const withName = (info: SparseInfo): SparseInfo => (name === undefined ? info : { ...info, name });

  if (fields.get("GNU.sparse.major") === "1") {
    const realSize = requireNumber(fields, "GNU.sparse.realsize", path);
    return withName({ format: "1.0", realSize, map: [] });
  }

  const realSize = requireNumber(fields, "GNU.sparse.size", path);
  const mapText = fields.get("GNU.sparse.map");
  if (mapText !== undefined) {
    const numbers = mapText === "" ? [] : mapText.split(",").map((n) => parseNumber(n, "GNU.sparse.map", path));
    if (numbers.length % 2 !== 0) throw invalidSparse("GNU.sparse.map has an odd count of numbers", path);
    return withName({ format: "0.1", realSize, map: pairs(numbers, path) });
  }

  if (offsets.length !== lengths.length) {
    throw invalidSparse("GNU.sparse.offset and GNU.sparse.numbytes counts differ", path);
  }
  const map = offsets.map((offset, i) => ({ offset, length: lengths[i] as number }));
  return withName({ format: "0.0", realSize, map });
}

/**
 * Parses the format 1.0 map at the start of `data`: decimal numbers, one per
 * line, the count of runs then an offset and a size per run, padded with NULs
 * to a multiple of 512 bytes. Returns `undefined` while `data` is too short.
 */
export function parseSparseMap10(
  data: Buffer,
  path: string,
): { map: SparseSegment[]; headerLength: number } | undefined {
  const numbers: number[] = [];
  let position = 0;
  let needed = 1;

  while (numbers.length < needed) {
    const newline = data.indexOf(0x0a, position);
    if (newline === -1) {
      if (data.length - position > 20) throw invalidSparse("sparse map line is too long", path);
      return undefined;
    }
    numbers.push(parseNumber(data.toString("latin1", position, newline), "sparse map", path));
    position = newline + 1;

    if (numbers.length === 1) {
      const count = numbers[0] as number;
      if (count > MAX_SPARSE_SEGMENTS) throw invalidSparse(`sparse map has ${count} runs`, path);
      needed = 1 + 2 * count;
    }
  }

  const headerLength = Math.ceil(position / 512) * 512;
  if (data.length < headerLength) return undefined;
  return { map: pairs(numbers.slice(1), path), headerLength };
}

/**
 * Checks that runs are in ascending order, do not overlap, end within the
 * real size and add up to the stored data size.
 */
export function checkSparseMap(map: SparseSegment[], realSize: number, storedSize: number, path: string): void {
  let end = 0;
  let total = 0;
  for (const segment of map) {
    if (segment.offset < end) throw invalidSparse(`run at offset ${segment.offset} overlaps or is out of order`, path);
    end = segment.offset + segment.length;
    total += segment.length;
  }
  if (end > realSize) throw invalidSparse(`run ends at ${end}, past the real size ${realSize}`, path);
  if (total !== storedSize) {
    throw invalidSparse(`runs add up to ${total} bytes but ${storedSize} bytes are stored`, path);
  }
}

function pairs(numbers: number[], path: string): SparseSegment[] {
  if (numbers.length / 2 > MAX_SPARSE_SEGMENTS) throw invalidSparse(`sparse map has ${numbers.length / 2} runs`, path);
  const map: SparseSegment[] = [];
  for (let i = 0; i + 1 < numbers.length; i += 2) {
    map.push({ offset: numbers[i] as number, length: numbers[i + 1] as number });
  }
  return map;
}

function requireNumber(fields: Map<string, string>, key: string, path: string): number {
  const text = fields.get(key);
  if (text === undefined) throw invalidSparse(`${key} is missing`, path);
  return parseNumber(text, key, path);
}

function parseNumber(text: string, field: string, path: string): number {
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) throw invalidSparse(`${field} value "${text}" is not a valid size`, path);
  return value;
}

function invalidSparse(problem: string, path: string): TarError {
  return new TarError("ERR_TAR_INVALID_SPARSE", `Invalid GNU sparse entry: ${problem}.`, { path });
}
