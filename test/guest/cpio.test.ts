import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, readlink, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { afterEach, describe, expect, it } from "vitest";

import { encodeCpio } from "../../bench/guest/cpio.js";

describe("encodeCpio", () => {
  let dir: string | undefined;

  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("extracts with busybox cpio", async () => {
    const archive = encodeCpio([
      { type: "dir", path: "etc", mode: 0o750 },
      { type: "file", path: "etc/odd-length", data: "abc" },
      { type: "file", path: "etc/empty", data: "" },
      { type: "file", path: "run.sh", data: "#!/bin/sh\n", mode: 0o755 },
      { type: "symlink", path: "link", target: "etc/odd-length" },
    ]);
    dir = await mkdtemp(path.join(os.tmpdir(), "layerdisk-cpio-"));
    execFileSync("busybox", ["cpio", "-i", "-d", "-H", "newc"], { cwd: dir, input: archive });

    expect(await readFile(path.join(dir, "etc/odd-length"), "utf8")).toBe("abc");
    expect(await readFile(path.join(dir, "etc/empty"), "utf8")).toBe("");
    expect(await readlink(path.join(dir, "link"))).toBe("etc/odd-length");
    expect((await stat(path.join(dir, "run.sh"))).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(dir, "etc"))).mode & 0o777).toBe(0o750);
  });

  it("pads every member to 4 bytes", () => {
    const archive = encodeCpio([{ type: "file", path: "a", data: "12345" }]);
    expect(archive.length % 4).toBe(0);
    expect(archive.subarray(0, 6).toString("ascii")).toBe("070701");
    expect(archive.includes(Buffer.from("TRAILER!!!\0"))).toBe(true);
  });

  it("gives identical bytes for identical entries", () => {
    const entries = [{ type: "file", path: "x", data: "same" }] as const;
    expect(encodeCpio(entries).equals(encodeCpio(entries))).toBe(true);
  });
});
