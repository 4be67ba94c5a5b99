import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";

import { describe, expect, it } from "vitest";

import type { TarEntry } from "../../src/tar/entry.js";
import { readTar } from "../../src/tar/reader.js";
import { parsePaxTime } from "../../src/tar/time.js";
import { tempDir } from "../image/builder.js";
import { hasTool } from "../image/testdata.js";
import { rawTar, ustarHeader } from "./raw-tar.js";

interface ReadEntry {
  entry: TarEntry;
  chunks: Array<{ offset: number; length: number }>;
  data: Buffer;
}

async function readAll(archive: Buffer): Promise<ReadEntry[]> {
  const result: ReadEntry[] = [];
  for await (const entry of readTar(Readable.from([archive]))) {
    const chunks: Array<{ offset: number; length: number }> = [];
    const parts: Buffer[] = [];
    for await (const chunk of entry.data()) {
      chunks.push({ offset: chunk.offset, length: chunk.data.length });
      parts.push(chunk.data);
    }
    result.push({ entry, chunks, data: Buffer.concat(parts) });
  }
  return result;
}

async function readFailure(archive: Buffer): Promise<{ code: string; message: string }> {
  try {
    await readAll(archive);
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error("expected the archive to be rejected");
}

/** Runs GNU tar or bsdtar in `dir` and returns the archive bytes. */
function tarOf(dir: string, tool: string, args: string[]): Buffer {
  const out = join(dir, "out.tar");
  execFileSync(tool, ["-cf", out, ...args], { cwd: dir });
  return readFileSync(out);
}

/** Writes a sparse file: 4 KiB runs at the given offsets, total `size`. */
function sparseFile(path: string, size: number, offsets: number[]): Buffer {
  writeFileSync(path, "");
  execFileSync("truncate", ["-s", String(size), path]);
  const expected = Buffer.alloc(0);
  for (const [i, offset] of offsets.entries()) {
    execFileSync("dd", [`of=${path}`, "bs=4096", "count=1", `seek=${offset / 4096}`, "conv=notrunc", "status=none"], {
      input: Buffer.alloc(4096, 0x41 + i),
    });
  }
  return expected;
}

describe("tar headers", () => {
  it("GNU long names, base-256 uid and 1950 mtime", async () => {
    const dir = tempDir("layerdisk-tar-");
    const long = "d".repeat(120) + "/" + "f".repeat(150);
    mkdirSync(join(dir, "src", "d".repeat(120)), { recursive: true });
    writeFileSync(join(dir, "src", long), "x");
    execFileSync("ln", ["-s", "t".repeat(200), join(dir, "src", "link")]);
    execFileSync("touch", ["-h", "-d", "1950-06-15 12:00:00 UTC", join(dir, "src", long)]);
    const archive = tarOf(dir, "tar", ["--format=gnu", "--owner=3000000", "--group=3000001", "--numeric-owner", "-C", "src", "."]);
    const entries = await readAll(archive);

    const file = entries.find((e) => e.entry.name === `./${long}`)!;
    expect(file.entry.uid).toBe(3_000_000);
    expect(file.entry.gid).toBe(3_000_001);
    expect(file.entry.mtime).toEqual({ sec: Date.UTC(1950, 5, 15, 12) / 1000, nsec: 0 });
    const link = entries.find((e) => e.entry.name === "./link")!;
    expect(link.entry.linkname).toBe("t".repeat(200));
  });

  it("PAX nanosecond times and large uid", async () => {
    const dir = tempDir("layerdisk-tar-");
    mkdirSync(join(dir, "src"));
    writeFileSync(join(dir, "src", "f"), "x");
    execFileSync("touch", ["-d", "2100-01-01 00:00:00.123456789 UTC", join(dir, "src", "f")]);
    const archive = tarOf(dir, "tar", ["--format=pax", "--owner=4294967294", "--group=65536", "--numeric-owner", "-C", "src", "f"]);
    const [file] = await readAll(archive);
    expect(file!.entry.mtime).toEqual({ sec: Date.UTC(2100, 0, 1) / 1000, nsec: 123456789 });
    expect(file!.entry.uid).toBe(4294967294);
    expect(file!.entry.gid).toBe(65536);
  });

  it("non-UTF-8 names stay byte-exact", async () => {
    const name = Buffer.from([0x61, 0xff, 0xfe, 0x2f, 0x62]);
    const paxName = Buffer.from([0x63, 0x80, 0x20, 0x64]);
    const archive = rawTar([{ name }, { name: "placeholder", pax: [["path", paxName]] }]);
    const entries = await readAll(archive);
    expect(Buffer.from(entries[0]!.entry.name, "latin1")).toEqual(name);
    expect(Buffer.from(entries[1]!.entry.name, "latin1")).toEqual(paxName);
  });

  it("SCHILY and LIBARCHIVE xattrs with binary values", async () => {
    const binary = Buffer.from([0x00, 0xff, 0x0a, 0x3d, 0x80]);
    const archive = rawTar([
      {
        name: "f",
        pax: [
          ["SCHILY.xattr.user.bin", binary],
          ["SCHILY.xattr.user.empty", ""],
          ["LIBARCHIVE.xattr.user.a%3Db", Buffer.from("aGVsbG8=")],
          ["SCHILY.xattr.security.capability", Buffer.from([1, 0, 0, 2])],
        ],
      },
    ]);
    const [file] = await readAll(archive);
    expect(file!.entry.xattrs.get("user.bin")).toEqual(binary);
    expect(file!.entry.xattrs.get("user.a=b")).toEqual(Buffer.from("hello"));
    expect(file!.entry.xattrs.get("security.capability")).toEqual(Buffer.from([1, 0, 0, 2]));
    // POSIX pax: an empty value deletes the keyword, so no empty xattr is set.
    expect(file!.entry.xattrs.has("user.empty")).toBe(false);
  });

  it("global PAX header applies to later entries", async () => {
    const archive = Buffer.concat([
      ustarHeader({ name: "global", type: "g" }, 0),
      rawTar([{ name: "f", pax: [["mtime", "5.5"]] }]),
    ]);
    const [file] = await readAll(archive);
    expect(file!.entry.mtime).toEqual({ sec: 5, nsec: 500_000_000 });
  });
});

describe("GNU sparse", () => {
  const size = 8 * 1024 * 1024;
  const offsets = [0, 1 << 20, 5 << 20];

  for (const version of ["0.0", "0.1", "1.0"]) {
    it(`sparse ${version} keeps holes and real name`, async () => {
      const dir = tempDir("layerdisk-tar-");
      mkdirSync(join(dir, "src", "sub"), { recursive: true });
      sparseFile(join(dir, "src", "sub", "sparse.img"), size, offsets);
      const archive = tarOf(dir, "tar", ["--format=pax", "--sparse", `--sparse-version=${version}`, "-C", "src", "sub/sparse.img"]);
      const [file] = await readAll(archive);

      expect(file!.entry.name).toBe("sub/sparse.img");
      expect(file!.entry.size).toBe(size);
      expect(file!.entry.sparse).toBe(true);
      const starts = file!.chunks.map((c) => c.offset);
      for (const offset of offsets) expect(starts).toContain(offset);
      expect(file!.data.length).toBe(offsets.length * 4096);
      expect(file!.data.subarray(4096, 4097)).toEqual(Buffer.from("B"));
    });
  }

  it.skipIf(!hasTool("bsdtar"))("bsdtar sparse 1.0 with a hole at the end", async () => {
    const dir = tempDir("layerdisk-tar-");
    mkdirSync(join(dir, "src"));
    sparseFile(join(dir, "src", "s.img"), size, [4096]);
    const archive = tarOf(dir, "bsdtar", ["--format=pax", "-C", "src", "s.img"]);
    const [file] = await readAll(archive);
    expect(file!.entry.size).toBe(size);
    expect(file!.data.length).toBeLessThanOrEqual(size);
    const nonzero = file!.chunks.find((c) => c.offset <= 4096 && c.offset + c.length > 4096);
    expect(nonzero).toBeDefined();
  });

  it("sparse map past real size is rejected", async () => {
    const archive = rawTar([
      {
        name: "GNUSparseFile.0/f",
        data: Buffer.alloc(10),
        pax: [
          ["GNU.sparse.size", "5"],
          ["GNU.sparse.map", "0,10"],
          ["GNU.sparse.name", "f"],
        ],
      },
    ]);
    const error = await readFailure(archive);
    expect(error.code).toBe("ERR_TAR_INVALID_SPARSE");
  });
});

describe("hostile archives", () => {
  it("oversized PAX header is rejected", async () => {
    const archive = Buffer.concat([ustarHeader({ name: "x", type: "x" }, 64 << 20), Buffer.alloc(1024)]);
    const error = await readFailure(archive);
    expect(error.code).toBe("ERR_TAR_INVALID");
  });

  it("malformed PAX record is rejected", async () => {
    const body = Buffer.from("99 path=x\n");
    const archive = Buffer.concat([ustarHeader({ name: "x", type: "x" }, body.length), body, Buffer.alloc(512 - body.length), rawTar([{ name: "f" }])]);
    const error = await readFailure(archive);
    expect(error.code).toBe("ERR_TAR_INVALID_PAX");
  });

  it("truncated archive is rejected", async () => {
    const archive = rawTar([{ name: "f", data: Buffer.alloc(2000, 1) }]).subarray(0, 1024);
    const error = await readFailure(archive);
    expect(error.code).toBe("ERR_TAR_TRUNCATED");
  });

  it("bad header checksum is rejected", async () => {
    const archive = rawTar([{ name: "f" }]);
    archive[0] = 0x67;
    const error = await readFailure(archive);
    expect(error.code).toBe("ERR_TAR_INVALID");
  });

  it("old GNU sparse type is unsupported", async () => {
    const error = await readFailure(rawTar([{ name: "f", type: "S" }]));
    expect(error.code).toBe("ERR_TAR_UNSUPPORTED_TYPE");
  });
});

describe("PAX times", () => {
  it.each([
    ["1700000000.123456789", { sec: 1700000000, nsec: 123456789 }],
    ["-1.25", { sec: -2, nsec: 750000000 }],
    ["-5", { sec: -5, nsec: 0 }],
    ["0.1234567891", { sec: 0, nsec: 123456789 }],
    ["7258118400", { sec: 7258118400, nsec: 0 }],
  ])("parses %s", (text, expected) => {
    expect(parsePaxTime(text)).toEqual(expected);
  });

  it("rejects non-numbers", () => {
    expect(parsePaxTime("1e9")).toBeUndefined();
    expect(parsePaxTime("")).toBeUndefined();
  });
});

