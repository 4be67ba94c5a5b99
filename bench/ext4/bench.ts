/**
 * Compares the ext4 writer with `mke2fs -d` on the same tree: one 1 GiB
 * file and 50,000 files of 4 KiB. Reports wall time and allocated disk
 * usage of both images; it asserts nothing.
 *
 * Run: node --import tsx bench/ext4/bench.ts [--quick]
 * (--quick uses a 64 MiB file and 5,000 small files.)
 */

import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";

import { Ext4Filesystem, type Ext4Attrs } from "../../src/ext4/index.js";

const quick = process.argv.includes("--quick");
const bigFileBytes = quick ? 64 << 20 : 1 << 30;
const smallFiles = quick ? 5_000 : 50_000;
const filesPerDir = 1000;
const imageBytes = 8 * 2 ** 30;
const chunkBytes = 1 << 20;

function makeTree(root: string): void {
  const chunk = Buffer.alloc(chunkBytes);
  let state = 0x12345678;
  for (let i = 0; i < chunk.length; i += 4) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    chunk.writeUInt32LE((state | 1) >>> 0, i);
  }
  const big = openSync(join(root, "big.bin"), "w");
  for (let written = 0; written < bigFileBytes; written += chunkBytes) {
    chunk.writeUInt32LE(written / chunkBytes, 0);
    writeFileSync(big, chunk);
  }
  closeSync(big);
  for (let i = 0; i < smallFiles; i++) {
    const dir = join(root, `d${Math.floor(i / filesPerDir)}`);
    if (i % filesPerDir === 0) mkdirSync(dir);
    const data = Buffer.alloc(4096, (i % 250) + 1);
    data.writeUInt32LE(i, 0);
    writeFileSync(join(dir, `f${i}`), data);
  }
}

function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

function timeMke2fs(tree: string, image: string): number {
  rmSync(image, { force: true });
  const start = process.hrtime.bigint();
  execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-d", tree, image, `${imageBytes / 1024}k`]);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function copyTree(fs: Ext4Filesystem, source: string, target: string): void {
  const buffer = Buffer.alloc(chunkBytes);
  for (const entry of readdirSync(source, { withFileTypes: true })) {
    const from = join(source, entry.name);
    const to = target === "" ? entry.name : `${target}/${entry.name}`;
    const stat = statSync(from);
    const time = { seconds: Math.floor(stat.mtimeMs / 1000) };
    const attrs: Ext4Attrs = { mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, atime: time, mtime: time, ctime: time };
    if (entry.isDirectory()) {
      fs.mkdir(to, attrs);
      copyTree(fs, from, to);
    } else if (stat.size <= chunkBytes) {
      fs.writeWholeFile(to, attrs, readFileSync(from));
    } else {
      fs.beginFile(to, attrs);
      const fd = openSync(from, "r");
      for (;;) {
        const read = readSync(fd, buffer, 0, chunkBytes, null);
        if (read === 0) break;
        fs.writeFile(buffer.subarray(0, read));
      }
      closeSync(fd);
      fs.finishFile();
    }
  }
}

function timeLayerdisk(tree: string, image: string): number {
  rmSync(image, { force: true });
  const start = process.hrtime.bigint();
  Ext4Filesystem.format(image, { size: imageBytes, seed: "bench" });
  const fs = Ext4Filesystem.open(image);
  copyTree(fs, tree, "");
  fs.commit();
  fs.close();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const work = mkdtempSync(join(tmpdir(), "layerdisk-ext4-bench-"));
try {
  const tree = join(work, "tree");
  mkdirSync(tree);
  makeTree(tree);
  const reference = join(work, "mke2fs.img");
  const ours = join(work, "layerdisk.img");

  const mke2fsSeconds = timeMke2fs(tree, reference);
  const layerdiskSeconds = timeLayerdisk(tree, ours);
  const mke2fsBytes = allocatedBytes(reference);
  const layerdiskBytes = allocatedBytes(ours);
  for (const image of [reference, ours]) {
    execFileSync("e2fsck", ["-fn", image], { stdio: "ignore" });
  }

  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  console.log(`tree: one ${mib(bigFileBytes)} MiB file and ${smallFiles} files of 4 KiB; ${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"})`);
  console.log(`mke2fs -d:  ${mke2fsSeconds.toFixed(2)} s, ${mib(mke2fsBytes)} MiB allocated`);
  console.log(`layerdisk:  ${layerdiskSeconds.toFixed(2)} s, ${mib(layerdiskBytes)} MiB allocated`);
  console.log(`speed ratio (mke2fs time / layerdisk time): ${(mke2fsSeconds / layerdiskSeconds).toFixed(2)}x`);
  console.log(`disk usage ratio (layerdisk / mke2fs): ${(layerdiskBytes / mke2fsBytes).toFixed(3)}x`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
