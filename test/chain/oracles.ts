// The reference tools every converted chain goes through: qemu-img check on
// each layer file, e2fsck -fn on the filesystem each layer leaves, and a
// kernel loop mount listed with list-tree.

import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { listTreeScript } from "../image/testdata.js";

export interface ToolResult {
  status: number;
  output: string;
}

function run(command: string, args: string[]): ToolResult {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 1 << 30 });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

export function qemuImgCheck(file: string): ToolResult {
  return run("qemu-img", ["check", "-f", "qcow2", file]);
}

/** Copies the chain under `top` into a sparse raw file and returns its path. */
export function flattenToRaw(top: string, folder: string): string {
  const raw = join(folder, "flat.raw");
  rmSync(raw, { force: true });
  execFileSync("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", top, raw]);
  return raw;
}

export function e2fsck(top: string): ToolResult {
  const folder = mkdtempSync(join(tmpdir(), "layerdisk-fsck-"));
  try {
    return run("e2fsck", ["-fn", flattenToRaw(top, folder)]);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/** Mounts the chain under `top` read-only through the kernel and lists it with list-tree. */
export function listChain(top: string, options: { mtime?: boolean } = {}): string {
  const folder = mkdtempSync(join(tmpdir(), "layerdisk-mount-"));
  const mountpoint = join(folder, "mnt");
  mkdirSync(mountpoint);
  try {
    const raw = flattenToRaw(top, folder);
    execFileSync("mount", ["-o", "loop,ro", raw, mountpoint]);
    try {
      const args = [listTreeScript, "--exclude", "/lost+found", ...(options.mtime ? ["--mtime"] : []), mountpoint];
      return execFileSync("python3", args, { maxBuffer: 1 << 30, encoding: "utf8" });
    } finally {
      execFileSync("umount", [mountpoint]);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/** list-tree of a reference directory, optionally with mtimes. */
export function listDirectory(root: string, options: { mtime?: boolean } = {}): string {
  const args = [listTreeScript, ...(options.mtime ? ["--mtime"] : []), root];
  return execFileSync("python3", args, { maxBuffer: 1 << 30, encoding: "utf8" });
}

export function sha256File(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** Compares two listings line by line and returns the first lines that differ, for readable failures. */
export function listingDifferences(expected: string, actual: string, limit = 10): string[] {
  const want = new Set(expected.split("\n"));
  const got = new Set(actual.split("\n"));
  const missing = [...want].filter((line) => !got.has(line)).map((line) => `- ${line}`);
  const extra = [...got].filter((line) => !want.has(line)).map((line) => `+ ${line}`);
  return [...missing, ...extra].slice(0, limit);
}
