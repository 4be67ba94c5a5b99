import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  bootGuest,
  copyImage,
  createOverlay,
  GuestError,
  referenceDisks,
  type ReferenceDisks,
} from "../../bench/guest/index.js";
import { expectPythonRuns, pythonRootfs, pythonRootfsReady, sha256File } from "./helpers.js";

// Each boot takes several seconds under TCG, and the first run also downloads
// the kernel and builds the reference images.
const BOOT_TIMEOUT_MS = 90_000;
const TEST_TIMEOUT_MS = 200_000;

describe("guest without a root disk", () => {
  it("returns stdout and a non-zero exit status", async () => {
    const result = await bootGuest({ command: "echo out; echo err >&2; exit 7", timeoutMs: BOOT_TIMEOUT_MS });
    expect(result.stdout).toBe("out\n");
    expect(result.stderr).toBe("err\n");
    expect(result.exitCode).toBe(7);
    expect(["kvm", "tcg"]).toContain(result.accel);
  }, TEST_TIMEOUT_MS);

  it("passes files and binary-safe output", async () => {
    const text = "line one\r\nline two\0after NUL\n";
    const result = await bootGuest({ command: "cat /run/layerdisk/input.txt", files: { "input.txt": text }, timeoutMs: BOOT_TIMEOUT_MS });
    expect(result.stdout).toBe(text);
    expect(result.exitCode).toBe(0);
  }, TEST_TIMEOUT_MS);
});

describe("guest timeout", () => {
  it("kills a guest that runs too long", async () => {
    // The test timeout is far shorter than the command, so a rejection here
    // shows that bootGuest stopped QEMU instead of waiting for the guest.
    const boot = bootGuest({ command: "sleep 600", timeoutMs: 15_000 });
    await expect(boot).rejects.toBeInstanceOf(GuestError);
    await expect(boot).rejects.toMatchObject({ code: "ERR_GUEST_TIMEOUT" });
  }, TEST_TIMEOUT_MS);
});

describe.skipIf(!pythonRootfsReady())("guest booted from the python image", () => {
  let disks: ReferenceDisks;
  let workDir: string;

  beforeAll(async () => {
    disks = await referenceDisks(pythonRootfs(), 1024);
    workDir = await mkdtemp(path.join(os.tmpdir(), "layerdisk-guest-test-"));
  }, 300_000);

  afterAll(async () => {
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it("runs python3 from a raw ext4 disk", async () => {
    const disk = path.join(workDir, "flat.ext4");
    await copyImage(disks.raw, disk);
    await expectPythonRuns({ disk, timeoutMs: BOOT_TIMEOUT_MS });
  }, TEST_TIMEOUT_MS);

  it("runs python3 from a qcow2 chain", async () => {
    const overlay = path.join(workDir, "python-overlay.qcow2");
    await createOverlay(disks.qcow2, "qcow2", overlay);
    await expectPythonRuns({ disk: overlay, timeoutMs: BOOT_TIMEOUT_MS });
  }, TEST_TIMEOUT_MS);

  it("keeps overlay writes across reboots", async () => {
    const overlay = path.join(workDir, "persist-overlay.qcow2");
    await createOverlay(disks.qcow2, "qcow2", overlay);
    const baseBefore = await sha256File(disks.qcow2);

    const write = await bootGuest({
      disk: overlay,
      command: "echo written-in-guest > /root/marker.txt && python3 -c 'open(\"/root/data.bin\", \"wb\").write(bytes(range(256)) * 4096)'",
      timeoutMs: BOOT_TIMEOUT_MS,
    });
    expect(write.stderr).toBe("");
    expect(write.exitCode).toBe(0);

    const read = await bootGuest({
      disk: overlay,
      command: "cat /root/marker.txt && sha256sum /root/data.bin | cut -d' ' -f1",
      timeoutMs: BOOT_TIMEOUT_MS,
    });
    const written = Buffer.alloc(256 * 4096, Buffer.from(Array.from({ length: 256 }, (_, byte) => byte)));
    const expectedData = createHash("sha256").update(written).digest("hex");
    expect(read.stdout).toBe(`written-in-guest\n${expectedData}\n`);
    expect(read.exitCode).toBe(0);
    expect(await sha256File(disks.qcow2)).toBe(baseBefore);
  }, TEST_TIMEOUT_MS);

  it("boots a three-image chain", async () => {
    const middle = path.join(workDir, "middle.qcow2");
    const top = path.join(workDir, "top.qcow2");
    await createOverlay(disks.qcow2, "qcow2", middle);
    const written = await bootGuest({ disk: middle, command: "echo from-middle > /etc/layer.txt", timeoutMs: BOOT_TIMEOUT_MS });
    expect(written.exitCode).toBe(0);
    const middleBefore = await sha256File(middle);
    await createOverlay(middle, "qcow2", top);

    const read = await bootGuest({
      disk: top,
      command: "cat /etc/layer.txt && echo from-top > /etc/layer.txt && cat /etc/layer.txt && python3 -c 'print(1)'",
      timeoutMs: BOOT_TIMEOUT_MS,
    });
    expect(read.stderr).toBe("");
    expect(read.stdout).toBe("from-middle\nfrom-top\n1\n");
    expect(read.exitCode).toBe(0);
    // Only the top image is writable, so the lower two stay as they were.
    expect(await sha256File(middle)).toBe(middleBefore);
  }, TEST_TIMEOUT_MS);

  it.each(["auto", "always"] as const)("runs python3 over virtio-fs with cache=%s", async (cache) => {
    // Read-only, because the reference tree is shared test data.
    await expectPythonRuns({ virtiofsDir: pythonRootfs(), virtiofsCache: cache, readOnly: true, timeoutMs: BOOT_TIMEOUT_MS });
  }, TEST_TIMEOUT_MS);

  it("rejects a disk that holds no ext4", async () => {
    const disk = path.join(workDir, "zeros.raw");
    await writeFile(disk, Buffer.alloc(4 << 20));
    const boot = bootGuest({ disk, command: "true", timeoutMs: BOOT_TIMEOUT_MS });
    await expect(boot).rejects.toBeInstanceOf(GuestError);
    await expect(boot).rejects.toMatchObject({ code: "ERR_GUEST_SETUP_FAILED", message: /stage root/ });
  }, TEST_TIMEOUT_MS);
});
