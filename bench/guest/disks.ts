import { existsSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";

import { buildAtomically, cacheKey, cacheSubdir } from "./cache.js";
import { execTool } from "./exec.js";

/**
 * Fixed identifiers so that the same tree and size give the same image,
 * apart from inode timestamps. UUID and hash seed are arbitrary constants.
 */
const FILESYSTEM_UUID = "6c617965-7264-4973-8b00-000000000001";
const HASH_SEED = "6c617965-7264-4973-8b00-000000000002";

/** Writes a raw ext4 image of `sizeMiB` holding a copy of `sourceDir`, with `mke2fs -d`. */
export async function makeExt4Image(sourceDir: string, target: string, sizeMiB: number): Promise<void> {
  await execTool("mke2fs", [
    "-q", "-F",
    "-t", "ext4",
    "-L", "layerdisk-root",
    "-U", FILESYSTEM_UUID,
    "-E", `hash_seed=${HASH_SEED}`,
    "-d", sourceDir,
    target,
    `${sizeMiB}M`,
  ]);
}

/** Converts any image QEMU reads into a standalone qcow2 file. */
export async function convertToQcow2(source: string, sourceFormat: "raw" | "qcow2", target: string): Promise<void> {
  await execTool("qemu-img", ["convert", "-f", sourceFormat, "-O", "qcow2", source, target]);
}

/** Creates an empty qcow2 overlay over `backing`, with the backing format recorded. */
export async function createOverlay(backing: string, backingFormat: "raw" | "qcow2", target: string): Promise<void> {
  await execTool("qemu-img", ["create", "-q", "-f", "qcow2", "-b", path.resolve(backing), "-F", backingFormat, target]);
}

/** Copies a (sparse) disk image, keeping its holes. */
export async function copyImage(source: string, target: string): Promise<void> {
  await execTool("cp", ["--sparse=always", "--reflink=auto", source, target]);
}

/** Lists every path under `root`, without following symbolic links. */
async function walkTree(root: string, relative = ""): Promise<string[]> {
  const entries = await readdir(path.join(root, relative), { withFileTypes: true });
  const paths: string[] = [];
  for (const entry of entries) {
    const child = path.join(relative, entry.name);
    paths.push(child);
    if (entry.isDirectory()) paths.push(...(await walkTree(root, child)));
  }
  return paths;
}

/**
 * Summarizes a directory tree by path, type, size and mtime of every entry.
 * Cheaper than hashing contents, and any unpack or edit of the tree changes it.
 */
async function treeFingerprint(root: string): Promise<string> {
  const names = (await walkTree(root)).sort();
  const lines: string[] = [];
  for (const name of names) {
    const stats = await lstat(path.join(root, name));
    lines.push(`${name}\t${stats.mode}\t${stats.size}\t${stats.mtimeMs}`);
  }
  return cacheKey(...lines);
}

/** Reference disks of one directory tree, for boot tests and the benchmark. */
export interface ReferenceDisks {
  /** Flat raw ext4 image made by `mke2fs -d`. */
  raw: string;
  /** The same image converted to qcow2, the bottom of a chain. */
  qcow2: string;
  sizeMiB: number;
}

/**
 * Returns cached raw and qcow2 images of `sourceDir`, building them when the
 * tree, the size or the mke2fs version changed. Callers must not boot these
 * files read-write. Copy the raw image or put an overlay over the qcow2.
 */
export async function referenceDisks(sourceDir: string, sizeMiB: number): Promise<ReferenceDisks> {
  const { stderr: mke2fsVersion } = await execTool("mke2fs", ["-V"]);
  const key = cacheKey(path.resolve(sourceDir), await treeFingerprint(sourceDir), String(sizeMiB), mke2fsVersion);
  const dir = path.join(await cacheSubdir("disks"), `${path.basename(sourceDir)}-${key}`);
  const raw = path.join(dir, "flat.ext4");
  const qcow2 = path.join(dir, "base.qcow2");
  if (!existsSync(qcow2)) {
    await buildAtomically(dir, async (temporary) => {
      await execTool("mkdir", ["-p", temporary]);
      await makeExt4Image(sourceDir, path.join(temporary, "flat.ext4"), sizeMiB);
      await convertToQcow2(path.join(temporary, "flat.ext4"), "raw", path.join(temporary, "base.qcow2"));
    });
  }
  return { raw, qcow2, sizeMiB };
}
