/**
 * Builds tar archives byte by byte, for headers that tar-stream's packer
 * cannot write: binary PAX values, names that are not UTF-8, odd type flags.
 */

export interface RawMember {
  /** Name bytes; strings are taken as latin1 so each character is one byte. */
  name: string | Buffer;
  /** ustar type flag, such as "0", "5", "x" or "S". */
  type?: string;
  data?: Buffer;
  mode?: number;
  uid?: number;
  mtime?: number;
  linkname?: string | Buffer;
  /** PAX records written in an `x` header before this member. */
  pax?: Array<[string | Buffer, string | Buffer]>;
}

const BLOCK = 512;

function bytes(value: string | Buffer): Buffer {
  return typeof value === "string" ? Buffer.from(value, "latin1") : value;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** Encodes one PAX record: the length counts itself, so try until the digits fit. */
export function paxRecord(key: string | Buffer, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(" "), bytes(key), Buffer.from("="), bytes(value), Buffer.from("\n")]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length += 1;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

export function ustarHeader(member: RawMember, size: number): Buffer {
  const header = Buffer.alloc(BLOCK);
  bytes(member.name).copy(header, 0, 0, 100);
  header.write(octal(member.mode ?? 0o644, 8), 100, "latin1");
  header.write(octal(member.uid ?? 0, 8), 108, "latin1");
  header.write(octal(0, 8), 116, "latin1");
  header.write(octal(size, 12), 124, "latin1");
  header.write(octal(member.mtime ?? 1_700_000_000, 12), 136, "latin1");
  header.write(member.type ?? "0", 156, "latin1");
  if (member.linkname !== undefined) bytes(member.linkname).copy(header, 157, 0, 100);
  header.write("ustar\u000000", 257, "latin1");

  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(octal(sum, 7) + " ", 148, "latin1");
  return header;
}

function padded(data: Buffer): Buffer {
  const padding = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return Buffer.concat([data, Buffer.alloc(padding)]);
}

/** Returns a complete archive with the two zero blocks at the end. */
export function rawTar(members: RawMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const member of members) {
    if (member.pax !== undefined) {
      const body = Buffer.concat(member.pax.map(([key, value]) => paxRecord(key, value)));
      parts.push(ustarHeader({ name: "PaxHeader", type: "x" }, body.length), padded(body));
    }
    const data = member.data ?? Buffer.alloc(0);
    parts.push(ustarHeader(member, data.length), padded(data));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
