import type { PaxRecord } from "./pax.js";

const SCHILY_PREFIX = "SCHILY.xattr.";
const LIBARCHIVE_PREFIX = "LIBARCHIVE.xattr.";

/**
 * Collects extended attributes from PAX records.
 *
 * GNU tar and star write `SCHILY.xattr.NAME=VALUE` with the raw value.
 * libarchive writes `LIBARCHIVE.xattr.NAME=BASE64`, where NAME is
 * percent-encoded. When both name one attribute, the later record wins.
 */
export function readXattrs(records: PaxRecord[]): Map<string, Buffer> {
  const xattrs = new Map<string, Buffer>();
  for (const { key, value } of records) {
    if (key.startsWith(SCHILY_PREFIX)) {
      xattrs.set(key.slice(SCHILY_PREFIX.length), value);
    } else if (key.startsWith(LIBARCHIVE_PREFIX)) {
      const name = percentDecode(key.slice(LIBARCHIVE_PREFIX.length));
      xattrs.set(name, Buffer.from(value.toString("latin1"), "base64"));
    }
  }
  return xattrs;
}

/** Decodes `%XX` escapes in a byte string into the bytes they name. */
function percentDecode(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
