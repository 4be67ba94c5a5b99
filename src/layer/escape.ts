/**
 * Python `str.isprintable()` is false for these general categories, and
 * every whitespace character outside them (tab, newline, ...) is in Cc, so
 * one test covers both "not printable" and "space" as `list-tree` uses them.
 */
const NEEDS_ESCAPE = /[\\\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/**
 * Escapes bytes the way `list-tree` does. Valid UTF-8 characters that are
 * printable and not whitespace stay as they are. Every other byte, and the
 * backslash, becomes `\xNN`.
 */
export function escapeBytes(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const length = utf8SequenceLength(bytes, i);
    if (length === 0) {
      out += hexByte(bytes[i] as number);
      i += 1;
      continue;
    }
    const char = Buffer.from(bytes.subarray(i, i + length)).toString("utf8");
    if (NEEDS_ESCAPE.test(char)) {
      for (let j = i; j < i + length; j++) out += hexByte(bytes[j] as number);
    } else {
      out += char;
    }
    i += length;
  }
  return out;
}

/** Escapes a byte string (one character per byte). */
export function escapeByteString(text: string): string {
  return escapeBytes(Buffer.from(text, "latin1"));
}

function hexByte(byte: number): string {
  return "\\x" + byte.toString(16).padStart(2, "0");
}

/**
 * Returns the length of the well-formed UTF-8 sequence at `i` (Unicode 15,
 * table 3-7), or 0 when the byte there does not start one.
 */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i] as number;
  if (b0 < 0x80) return 1;

  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) length = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3;
    if (b0 === 0xe0) low = 0xa0;
    if (b0 === 0xed) high = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4;
    if (b0 === 0xf0) low = 0x90;
    if (b0 === 0xf4) high = 0x8f;
  } else return 0;

  if (i + length > bytes.length) return 0;
  const b1 = bytes[i + 1] as number;
  if (b1 < low || b1 > high) return 0;
  for (let j = i + 2; j < i + length; j++) {
    const b = bytes[j] as number;
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return length;
}
