// Chain depth limits and export, on a 30-layer image built here: the merged
// chain and the exported files must show the same tree as the plain chain.

import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createChain, type CreateChainResult } from "../../src/chain/create.js";
import { keptLayerCount, resolveMaxDepth } from "../../src/chain/depth.js";
import { exportChain } from "../../src/chain/export.js";
import { resetOverlay } from "../../src/chain/overlay.js";
import { prune } from "../../src/store/prune.js";
import { Store } from "../../src/store/store.js";
import { verifyStore } from "../../src/store/verify.js";
import { buildLayout, makeTar, type TarMember } from "../image/builder.js";
import { listTreeScript } from "../image/testdata.js";
import { e2fsck, listChain, listingDifferences, qemuImgCheck } from "./oracles.js";

const LAYER_COUNT = 30;
const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Runs the layerdisk CLI from the sources and returns its stdout. */
async function layerdisk(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli", "main.ts"), ...args], {
    cwd: repoRoot,
    maxBuffer: 1 << 24,
  });
  return stdout;
}
const scratch = mkdtempSync(join(tmpdir(), "layerdisk-depth-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Layer i adds /data/file-i, rewrites /data/shared, deletes the file three
 * layers down with a whiteout, and every fifth layer replaces /data/sub
 * with an opaque directory.
 */
async function layerTar(index: number): Promise<Buffer> {
  const members: TarMember[] = [
    { name: "data/", type: "directory" },
    { name: `data/file-${index}`, content: `layer ${index}\n`.repeat(index + 1) },
    { name: "data/shared", content: `written by layer ${index}\n` },
  ];
  if (index >= 3) members.push({ name: `data/.wh.file-${index - 3}` });
  if (index % 5 === 0) {
    members.push({ name: "data/sub/", type: "directory" });
    if (index > 0) members.push({ name: "data/sub/.wh..wh..opq" });
    members.push({ name: `data/sub/from-${index}`, content: `sub ${index}\n` });
  }
  if (index === 7) members.push({ name: "data/link", type: "symlink", linkname: "shared" });
  return makeTar(members);
}

function listRaw(raw: string): string {
  const mountpoint = mkdtempSync(join(scratch, "mnt-"));
  execFileSync("mount", ["-o", "loop,ro", raw, mountpoint]);
  try {
    return execFileSync("python3", [listTreeScript, "--exclude", "/lost+found", mountpoint], { encoding: "utf8", maxBuffer: 1 << 30 });
  } finally {
    execFileSync("umount", [mountpoint]);
    rmSync(mountpoint, { recursive: true });
  }
}

function qemuImgInfo(file: string): Record<string, unknown> {
  return JSON.parse(execFileSync("qemu-img", ["info", "-U", "--output=json", file], { encoding: "utf8" })) as Record<string, unknown>;
}

describe("depth arithmetic", () => {
  it("keeps every layer when the chain fits", () => {
    expect(keptLayerCount(9, 10)).toBe(9);
    expect(keptLayerCount(3, undefined)).toBe(3);
  });

  it("keeps depth minus two layers otherwise", () => {
    expect(keptLayerCount(10, 10)).toBe(8);
    expect(keptLayerCount(30, 10)).toBe(8);
    expect(keptLayerCount(30, 2)).toBe(0);
  });

  it("resolves presets and rejects bad values", () => {
    expect(resolveMaxDepth("cloud-hypervisor")).toBe(10);
    expect(resolveMaxDepth("crosvm")).toBe(10);
    expect(resolveMaxDepth("qemu")).toBeUndefined();
    expect(resolveMaxDepth("libkrun")).toBeUndefined();
    expect(resolveMaxDepth("12")).toBe(12);
    expect(() => resolveMaxDepth(1)).toThrow(expect.objectContaining({ code: "ERR_INVALID_MAX_DEPTH" }));
    expect(() => resolveMaxDepth("firecracker")).toThrow(expect.objectContaining({ code: "ERR_INVALID_MAX_DEPTH" }));
  });
});

describe("30-layer image", () => {
  const store = join(scratch, "store");
  let reference: string;
  let plain: CreateChainResult;
  let plainTree: string;

  beforeAll(async () => {
    const layers = [];
    for (let index = 0; index < LAYER_COUNT; index += 1) layers.push({ tar: await layerTar(index) });
    reference = `oci-layout:${buildLayout({ layers }, join(scratch, "layout"))}:latest`;
    plain = await createChain(reference, { store, fsSize: 256 * 1024 ** 2 });
    plainTree = listChain(plain.disk);
  }, 120_000);

  it("plain chain has one file per layer", () => {
    expect(plain.chain).toHaveLength(LAYER_COUNT);
    expect(plainTree).toContain("data/file-29");
    expect(plainTree).not.toContain("data/file-26 ");
  });

  it("maxDepth 10 merges into at most 10 files", async () => {
    const merged = await createChain(reference, { store, fsSize: 256 * 1024 ** 2, maxDepth: 10 });

    expect(merged.chain.length + 1).toBeLessThanOrEqual(10);
    expect(merged.chain.slice(0, 8)).toEqual(plain.chain.slice(0, 8));
    expect(merged.chain[8]).toMatch(/merged-[0-9a-f]{64}\.qcow2$/);
    expect(merged.layerFiles).toEqual(plain.chain);
    const backing = qemuImgInfo(merged.chain[8]!)["backing-filename"];
    expect(backing).toBe(plain.chain[7]!.split("/").at(-1));
    for (const file of [...merged.chain, merged.disk]) {
      const check = qemuImgCheck(file);
      expect(check.status, `qemu-img check ${file}:\n${check.output}`).toBe(0);
    }
    const fsck = e2fsck(merged.disk);
    expect(fsck.status, fsck.output).toBe(0);
    const tree = listChain(merged.disk);
    expect(listingDifferences(plainTree, tree)).toEqual([]);
    expect(tree).toBe(plainTree);
    expect(merged.vmm.qemu.args.filter((arg) => arg === "-blockdev")).toHaveLength(10);
  });

  it("reuses a merged file", async () => {
    const first = await createChain(reference, { store, fsSize: 256 * 1024 ** 2, maxDepth: "crosvm" });
    const second = await createChain(reference, { store, fsSize: 256 * 1024 ** 2, maxDepth: 10 });

    expect(second.chain).toEqual(first.chain);
    const folder = join(store, "layers", readdirSync(join(store, "layers"))[0]!);
    expect(readdirSync(folder).filter((name) => name.startsWith("merged-"))).toHaveLength(2);
  });

  it("maxDepth 2 merges into one standalone file", async () => {
    const merged = await createChain(reference, { store, fsSize: 256 * 1024 ** 2, maxDepth: 2 });

    expect(merged.chain).toHaveLength(1);
    expect(qemuImgInfo(merged.chain[0]!)["backing-filename"]).toBeUndefined();
    expect(listChain(merged.disk)).toBe(plainTree);
  });

  it("verify checks merged files and prune keeps used ones", async () => {
    const result = await verifyStore(await new Store(store).open());
    expect(result.checks.filter((check) => check.subject.startsWith("merged "))).toHaveLength(2);
    expect(result.clean).toBe(true);

    const pruned = await prune(await new Store(store).open());
    expect(pruned.removedMergedFiles).toEqual([]);
  });

  it("prune removes merged files no overlay uses", async () => {
    const merged = await createChain(reference, { store, fsSize: 256 * 1024 ** 2, maxDepth: 5 });
    const storeHandle = await new Store(store).open();
    for (const overlay of await storeHandle.listOverlays()) rmSync(overlay.disk);

    const pruned = await prune(storeHandle);

    expect(pruned.removedMergedFiles).toHaveLength(3);
    expect(existsSync(merged.chain.at(-1)!)).toBe(false);
    expect(existsSync(plain.chain.at(-1)!)).toBe(true);
  });

  it("raw export equals the chain's tree", async () => {
    const output = join(scratch, "export", "disk.raw");
    mkdirSync(join(scratch, "export"), { recursive: true });

    const file = await exportChain(plain.chain.at(-1)!, output, { format: "raw" });

    expect(file).toBe(output);
    expect(qemuImgInfo(output).format).toBe("raw");
    expect(listRaw(output)).toBe(plainTree);
    expect(readdirSync(join(scratch, "export"))).toEqual(["disk.raw"]);
  });

  it("qcow2 export has no backing file", async () => {
    const output = join(scratch, "export", "disk.qcow2");

    await exportChain(plain.chain.at(-1)!, output, { format: "qcow2" });

    const info = qemuImgInfo(output);
    expect(info.format).toBe("qcow2");
    expect(info["backing-filename"]).toBeUndefined();
    const check = qemuImgCheck(output);
    expect(check.status, check.output).toBe(0);
    expect(listChain(output)).toBe(plainTree);
  });

  it("CLI create and export use the depth limit", async () => {
    const created = JSON.parse(
      await layerdisk(["create", "--store", store, "--json", "--fs-size", "256M", "--max-depth", "cloud-hypervisor", reference]),
    ) as CreateChainResult;
    expect(created.chain).toHaveLength(9);

    const output = join(scratch, "export", "cli.raw");
    const exported = JSON.parse(await layerdisk(["export", "--store", store, "--json", "--format", "raw", created.disk, output])) as {
      file: string;
      format: string;
    };

    expect(exported).toMatchObject({ file: output, format: "raw" });
    expect(listRaw(output)).toBe(plainTree);
  }, 60_000);

  it("reset keeps a merged backing file", async () => {
    const merged = await createChain(reference, { store, fsSize: 256 * 1024 ** 2, maxDepth: 10 });

    await resetOverlay(await new Store(store).open(), merged.overlayId);

    expect(resolve(String(qemuImgInfo(merged.disk)["full-backing-filename"]))).toBe(merged.chain.at(-1));
    expect(listChain(merged.disk)).toBe(plainTree);
  });

  it("CLI exports a store image by reference", async () => {
    const output = join(scratch, "export", "by-reference.qcow2");

    await layerdisk(["export", "--store", store, "--format", "qcow2", reference, output]);

    expect(qemuImgInfo(output)["backing-filename"]).toBeUndefined();
    expect(listChain(output)).toBe(plainTree);
  }, 60_000);

  it("CLI rejects an invalid depth", async () => {
    const failure = await layerdisk(["create", "--store", store, "--max-depth", "1", reference]).catch((error: { code: number; stderr: string }) => error);

    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toContain("ERR_USAGE");
  });
});
