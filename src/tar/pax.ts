import { TarError } from "../errors.js";

/**
 * One PAX extended-header record. The key is a byte string (each character
 * is one byte, as `latin1` decodes it), so keywords such as
 * `SCHILY.xattr.NAME` keep a NAME that is not valid UTF-8. The value is kept
 * as raw bytes because xattr values are binary.
 */
export interface PaxRecord {
  key: string;
  value: Buffer;
}

const SPACE = 0x20;
const EQUALS = 0x3d;
const NEWLINE = 0x0a;

/**
 * Decodes a PAX extended header body into its records, in order.
 *
 * POSIX.1-2001 (pax, "extended header"): each record is
 * `"%d %s=%s\n", length, keyword, value`, where the decimal length counts the
 * whole record, its own digits and the newline included. Order is kept
 * because GNU sparse 0.0 repeats `GNU.sparse.offset`/`GNU.sparse.numbytes`.
 */
export function decodePaxRecords(body: Buffer, path?: string): PaxRecord[] {
  const records: PaxRecord[] = [];
  let position = 0;

  while (position < body.length) {
    // Padding after the last record is NUL bytes.
    if (body[position] === 0) break;

    const space = body.indexOf(SPACE, position);
    const lengthText = space === -1 ? "" : body.toString("latin1", position, space);
    const length = /^[0-9]{1,10}$/.test(lengthText) ? Number(lengthText) : NaN;
    const end = position + length;
    if (!Number.isSafeInteger(length) || space === -1 || end > body.length || end <= space + 1) {
      throw invalidPax(`record length "${lengthText}" at byte ${position}`, path);
    }
    if (body[end - 1] !== NEWLINE) throw invalidPax(`record at byte ${position} does not end in a newline`, path);

    const equals = body.indexOf(EQUALS, space + 1);
    if (equals === -1 || equals >= end) throw invalidPax(`record at byte ${position} has no "="`, path);

    records.push({
      key: body.toString("latin1", space + 1, equals),
      value: Buffer.from(body.subarray(equals + 1, end - 1)),
    });
    position = end;
  }

  return records;
}

function invalidPax(problem: string, path: string | undefined): TarError {
  const details = path === undefined ? {} : { path };
  return new TarError("ERR_TAR_INVALID_PAX", `Invalid PAX extended header: ${problem}.`, details);
}
