import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { blockdevArgs } from "../../bench/guest/blockdev.js";
import { encodeJobArchive } from "../../bench/guest/initramfs.js";
import { readReport } from "../../bench/guest/qemu.js";
import { GuestError } from "../../bench/guest/errors.js";

describe("readReport", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "layerdisk-report-"));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("splits stdout and stderr by length", async () => {
    const file = path.join(dir, "complete");
    await writeFile(file, "noise\nLAYERDISK-RESULT 1 ok 3 3 4 run\nhi\nerr\n");
    const report = await readReport(file);
    expect(report).toEqual({ status: "ok", exitCode: 3, stdout: "hi\n", stderr: "err\n", stage: "run" });
  });

  it("rejects a truncated report", async () => {
    const file = path.join(dir, "truncated");
    await writeFile(file, "LAYERDISK-RESULT 1 ok 0 10 0 run\nshort");
    expect(await readReport(file)).toBeUndefined();
  });

  it("returns undefined for a missing file", async () => {
    expect(await readReport(path.join(dir, "missing"))).toBeUndefined();
  });
});

describe("blockdevArgs", () => {
  it("declares backing nodes before their users", () => {
    const { args, nodeName } = blockdevArgs(
      [
        { filename: "/d/top.qcow2", format: "qcow2" },
        { filename: "/d/base.raw", format: "raw" },
      ],
      false,
    );
    const nodes = args.filter((arg) => arg !== "-blockdev").map((arg) => JSON.parse(arg) as Record<string, unknown>);
    expect(nodeName).toBe("disk0");
    expect(nodes.map((node) => node["node-name"])).toEqual(["file1", "disk1", "file0", "disk0"]);
    expect(nodes[3]).toMatchObject({ driver: "qcow2", backing: "disk1", "read-only": false });
    expect(nodes[1]).toMatchObject({ driver: "raw", "read-only": true });
  });

  it("rejects an unsupported format", () => {
    expect(() => blockdevArgs([{ filename: "/d/x.vmdk", format: "vmdk" }], false)).toThrow(GuestError);
  });
});

describe("encodeJobArchive", () => {
  it("rejects a file name with a slash", () => {
    expect(() => encodeJobArchive({ command: "true", env: {}, files: { "a/b": "x" } })).toThrow(/invalid guest file name/);
  });
});
