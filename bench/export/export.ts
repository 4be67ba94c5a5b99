/**
 * Measures exportChain (raw and qcow2) against `qemu-img convert` of the
 * same chain: the overlay createChain makes over debian-python's 3 layers
 * from $LAYERDISK_TESTDATA.
 *
 * Run: node --import tsx bench/export/export.ts [RUNS]
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createChain } from "../../src/chain/create.js";
import { exportChain } from "../../src/chain/export.js";

const testdata = process.env.LAYERDISK_TESTDATA ?? "/var/cache/layerdisk-testdata";
const FS_SIZE = 8 * 1024 ** 3;

async function timed(action: () => Promise<unknown> | unknown): Promise<number> {
  const started = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 3);
  const root = mkdtempSync(join(tmpdir(), "layerdisk-bench-export-"));
  try {
    const chain = await createChain(`oci-layout:${join(testdata, "debian-python")}:latest`, { store: join(root, "store"), fsSize: FS_SIZE });
    for (let index = 0; index < runs; index += 1) {
      for (const format of ["raw", "qcow2"] as const) {
        const ours = join(root, `ours.${format}`);
        const theirs = join(root, `qemu-img.${format}`);
        const exportSeconds = await timed(() => exportChain(chain.disk, ours, { format }));
        const qemuSeconds = await timed(() => execFileSync("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", format, chain.disk, theirs]));
        process.stdout.write(
          `run ${index + 1} ${format}: exportChain ${exportSeconds.toFixed(2)} s, qemu-img convert ${qemuSeconds.toFixed(2)} s, ` +
            `ratio ${(qemuSeconds / exportSeconds).toFixed(2)}\n`,
        );
        rmSync(ours);
        rmSync(theirs);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
