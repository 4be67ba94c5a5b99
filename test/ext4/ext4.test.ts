import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";

import { afterAll, describe, expect, it } from "vitest";

import { Ext4Error } from "../../src/errors.js";
import { Ext4Filesystem, type Ext4Attrs } from "../../src/ext4/index.js";

const scratch = mkdtempSync(join(tmpdir(), "layerdisk-ext4-ts-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const time = { seconds: 1_600_000_000, nanoseconds: 42 };
const attrs = (mode: number): Ext4Attrs => ({ mode, uid: 1000, gid: 100, atime: time, mtime: time, ctime: time });

function fsck(image: string): { status: number | null; output: string } {
  const result = spawnSync("e2fsck", ["-fn", image], { encoding: "utf8" });
  return { status: result.status, output: result.stdout + result.stderr };
}

describe("Ext4Filesystem", () => {
  it("formats, writes entries and reads them back", () => {
    const image = join(scratch, "basic.img");
    Ext4Filesystem.format(image, { size: 128 << 20, seed: "sha256:abc", timestamp: 1_700_000_000 });
    const fs = Ext4Filesystem.open(image);
    fs.mkdir("etc", attrs(0o755));
    fs.writeWholeFile("etc/hostname", attrs(0o644), Buffer.from("guest\n"));
    fs.beginFile("sparse", attrs(0o600));
    fs.writeFile(Buffer.from("a"));
    fs.skipFile(10n << 30n);
    fs.writeFile(Buffer.from("z"));
    fs.finishFile();
    fs.symlink("link", "etc/hostname", attrs(0));
    fs.link("etc/hardlink", "etc/hostname");
    fs.mknod("dev-null", { type: "char-device", major: 1, minor: 3 }, attrs(0o666));
    fs.mknod(Buffer.from([0x6e, 0xff, 0x01]), { type: "fifo" }, attrs(0o600));
    fs.setXattr("etc/hostname", "user.origin", Buffer.from("test"));
    fs.commit();

    expect(fs.readFile("etc/hostname").toString()).toBe("guest\n");
    expect(fs.lstat("sparse")?.size).toBe(10 * 2 ** 30 + 2);
    const link = fs.lstat("link");
    expect(link?.type).toBe("symlink");
    expect(link?.target?.toString()).toBe("etc/hostname");
    expect(fs.lstat("etc/hostname")).toMatchObject({ type: "file", mode: 0o100644, uid: 1000, gid: 100, nlink: 2, mtime: time });
    expect(fs.lstat("dev-null")?.rdev).toEqual({ major: 1, minor: 3 });
    expect(fs.readDir("/").map((entry) => entry.name.toString("latin1"))).toContain("n\xff\x01");
    expect(fs.xattrs("etc/hostname")).toEqual([{ name: Buffer.from("user.origin"), value: Buffer.from("test") }]);
    expect(fs.lstat("missing")).toBeNull();
    expect(fs.resolveSymlinks("link").toString()).toBe("etc/hostname");
    fs.close();

    const result = fsck(image);
    expect(result.output).not.toMatch(/Fix\?|Clear\?|Salvage\?/);
    expect(result.status).toBe(0);
  });

  it("throws Ext4Error with code and path", () => {
    const image = join(scratch, "errors.img");
    Ext4Filesystem.format(image, { size: 64 << 20, seed: "errors" });
    const fs = Ext4Filesystem.open(image);
    fs.writeWholeFile("file", attrs(0o644), Buffer.from("x"));

    const tooLong = () => fs.mkdir("a".repeat(256), attrs(0o755));
    expect(tooLong).toThrow(Ext4Error);
    expect(tooLong).toThrow(expect.objectContaining({ code: "ERR_EXT4_NAME_TOO_LONG" }));
    expect(() => fs.mkdir("file/sub", attrs(0o755))).toThrow(expect.objectContaining({ code: "ERR_EXT4_NOT_A_DIRECTORY", path: "file" }));
    expect(() => fs.link("new", "missing")).toThrow(expect.objectContaining({ code: "ERR_EXT4_NOT_FOUND", path: "missing" }));
    expect(fs.lstat("new")).toBeNull();
    fs.commit();
    fs.close();
    expect(fsck(image).status).toBe(0);
  });

  it("gives byte-identical images for the same input", () => {
    const digests = [0, 1].map((run) => {
      const image = join(scratch, `same-${run}.img`);
      Ext4Filesystem.format(image, { size: 64 << 20, seed: "sha256:chain", timestamp: 1_700_000_000 });
      const fs = Ext4Filesystem.open(image);
      fs.mkdir("bin", attrs(0o755));
      for (let i = 0; i < 300; i++) fs.writeWholeFile(`bin/tool-${i}`, attrs(0o755), Buffer.alloc(5000 + i, i));
      fs.symlink("sbin", "bin", attrs(0));
      fs.commit();
      fs.close();
      return createHash("sha256").update(readFileSync(image)).digest("hex");
    });
    expect(digests[1]).toBe(digests[0]);
  });

  it("runs synchronously inside a worker thread", async () => {
    const image = join(scratch, "worker.img");
    Ext4Filesystem.format(image, { size: 64 << 20, seed: "worker" });
    const module = new URL("../../src/ext4/index.ts", import.meta.url).href;
    const source = `
      const { workerData, parentPort } = require("node:worker_threads");
      import("tsx/esm/api").then(({ register }) => {
        register();
        return import(workerData.module);
      }).then(({ Ext4Filesystem }) => {
        const fs = Ext4Filesystem.open(workerData.image);
        const t = { seconds: 0 };
        const a = { mode: 0o644, uid: 0, gid: 0, atime: t, mtime: t, ctime: t };
        for (let i = 0; i < 2000; i++) fs.writeWholeFile("f" + i, a, Buffer.from(String(i)));
        fs.commit();
        fs.close();
        parentPort.postMessage("done");
      }, (error) => parentPort.postMessage(String(error)));
    `;
    // The worker loads the TypeScript sources through tsx, as vitest does here.
    const worker = new Worker(source, { eval: true, workerData: { image, module } });
    const message = await new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    expect(message).toBe("done");
    expect(fsck(image).status).toBe(0);
    const listing = execFileSync("debugfs", ["-R", "ls -p /", image], { encoding: "utf8" });
    expect(listing).toContain("/f1999/");
  });
});
