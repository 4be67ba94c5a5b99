import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Qcow2Chain, Qcow2Error, createImage, imageInfo } from "../../src/index.js";

const MiB = 1024 * 1024;
let dir: string;

function qemuImg(...args: string[]): string {
  return execFileSync("qemu-img", args, { encoding: "utf8" });
}

function pattern(length: number, seed: number): Buffer {
  const buffer = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buffer[i] = (i * 31 + seed) & 0xff;
  return buffer;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "layerdisk-qcow2-ts-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("qcow2 chain API", () => {
  it("creates a chain and reads through it", async () => {
    const base = join(dir, "base.qcow2");
    await createImage(base, { virtualSize: 16 * MiB });
    const chain = await Qcow2Chain.open(base, { writable: true });
    await chain.write(0, pattern(MiB, 1));
    await chain.close();

    const overlay = await Qcow2Chain.createOverlay(join(dir, "top.qcow2"), base, { clusterSize: 4096 });
    await overlay.write(100, pattern(5000, 2));
    await overlay.writeZeroes(512 * 1024, 64 * 1024);
    const head = await overlay.read(0, 6000);
    expect(head.subarray(0, 100)).toEqual(pattern(MiB, 1).subarray(0, 100));
    expect(head.subarray(100, 5100)).toEqual(pattern(5000, 2));
    expect(head.subarray(5100)).toEqual(pattern(MiB, 1).subarray(5100, 6000));
    expect(await overlay.read(512 * 1024, 64 * 1024)).toEqual(Buffer.alloc(64 * 1024));
    expect(await overlay.read(15 * MiB, 4096)).toEqual(Buffer.alloc(4096));
    await overlay.close();

    const check = qemuImg("check", "-f", "qcow2", join(dir, "top.qcow2"));
    expect(check).toContain("No errors were found");
  });

  it("reports info like qemu-img info --backing-chain", async () => {
    const layers = await imageInfo(join(dir, "top.qcow2"));
    expect(layers).toHaveLength(2);
    expect(layers[0]).toMatchObject({
      format: "qcow2",
      virtualSize: 16 * MiB,
      clusterSize: 4096,
      backingFilename: "base.qcow2",
      backingFilenameFormat: "qcow2",
      compat: "1.1",
      refcountBits: 16,
    });
    expect(layers[1]).toMatchObject({ format: "qcow2", clusterSize: 65536, backingFilename: null });

    const qemu = JSON.parse(qemuImg("info", "--backing-chain", "--output=json", join(dir, "top.qcow2"))) as Array<
      Record<string, unknown>
    >;
    expect(qemu.map((entry) => entry["virtual-size"])).toEqual(layers.map((layer) => layer.virtualSize));
    expect(qemu.map((entry) => entry["cluster-size"])).toEqual(layers.map((layer) => layer.clusterSize));
    expect(qemu[0]?.["backing-filename-format"]).toBe("qcow2");
  });

  it("flattens to qcow2 and sparse raw", async () => {
    const chain = await Qcow2Chain.open(join(dir, "top.qcow2"));
    await chain.flatten(join(dir, "flat.qcow2"));
    await chain.flatten(join(dir, "flat.raw"), { format: "raw" });
    await chain.close();

    expect(qemuImg("check", "-f", "qcow2", join(dir, "flat.qcow2"))).toContain("No errors were found");
    execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", join(dir, "flat.qcow2"), join(dir, "top.qcow2")]);
    execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", join(dir, "flat.raw"), join(dir, "top.qcow2")]);
    const raw = statSync(join(dir, "flat.raw"));
    expect(raw.size).toBe(16 * MiB);
    expect(raw.blocks * 512).toBeLessThan(4 * MiB);
    expect(readFileSync(join(dir, "flat.raw")).subarray(100, 5100)).toEqual(pattern(5000, 2));
  });

  it("imports a raw file", async () => {
    const raw = join(dir, "import.raw");
    const contents = Buffer.alloc(2 * MiB);
    pattern(300_000, 9).copy(contents, 500_000);
    writeFileSync(raw, contents);
    const path = join(dir, "imported.qcow2");
    await createImage(path, { virtualSize: 2 * MiB });
    const chain = await Qcow2Chain.open(path, { writable: true });
    await chain.importRaw(raw);
    expect(await chain.read(0, 2 * MiB)).toEqual(contents);
    await chain.close();
    execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", path, raw]);
  });

  it("rejects writes to a read-only chain", async () => {
    const chain = await Qcow2Chain.open(join(dir, "top.qcow2"));
    const write = chain.write(0, Buffer.from([1]));
    await expect(write).rejects.toBeInstanceOf(Qcow2Error);
    await expect(write).rejects.toMatchObject({ code: "ERR_QCOW2_READ_ONLY" });
    await chain.close();
    await expect(chain.read(0, 1)).rejects.toMatchObject({ code: "ERR_QCOW2_CLOSED" });
  });

  it("rejects a dirty image with file and offset", async () => {
    const path = join(dir, "dirty.qcow2");
    await createImage(path, { virtualSize: MiB });
    const fd = openSync(path, "r+");
    // incompatible_features is the big-endian u64 at byte 72; bit 0 is the dirty bit.
    writeSync(fd, Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), 0, 8, 72);
    closeSync(fd);

    const open = Qcow2Chain.open(path);
    await expect(open).rejects.toBeInstanceOf(Qcow2Error);
    await expect(open).rejects.toMatchObject({ code: "ERR_QCOW2_DIRTY", file: path, offset: 72 });
  });

  it("rejects a backing file outside the allowed directory", async () => {
    const sub = join(dir, "sub");
    mkdirSync(sub);
    await createImage(join(sub, "outside.qcow2"), { backing: { path: join(dir, "base.qcow2") } });
    const open = Qcow2Chain.open(join(sub, "outside.qcow2"));
    await expect(open).rejects.toMatchObject({ code: "ERR_QCOW2_BACKING_REJECTED", file: join(sub, "outside.qcow2") });
    const allowed = await Qcow2Chain.open(join(sub, "outside.qcow2"), { allowedDir: dir });
    await allowed.close();
  });

  it("rejects invalid create options", async () => {
    const create = createImage(join(dir, "bad.qcow2"), { virtualSize: MiB, clusterSize: 1000 });
    await expect(create).rejects.toMatchObject({ code: "ERR_QCOW2_INVALID_ARGUMENT" });
  });
});
