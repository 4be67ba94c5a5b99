/**
 * Measures pullImage against docker-registry on 127.0.0.1. The cases are a
 * cold pull of debian-python (3 layers, 156 MiB compressed) with 1 and 3
 * parallel downloads, and a pull whose blobs are all cached. `skopeo copy`
 * of the same image to an OCI layout is the baseline.
 *
 * Run: node --import tsx bench/registry/pull.ts
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { pullImage } from "../../src/registry/pull.js";
import { skopeoCopy, startRegistry } from "../../test/registry/helpers/registry-server.js";

const testdata = process.env.LAYERDISK_TESTDATA ?? "/var/cache/layerdisk-testdata";
const MIB = 1024 * 1024;

/** Runs `task` and prints its wall time, and the rate if `bytes()` is above 0 after the task. */
async function timed(label: string, bytes: () => number, task: () => Promise<void>): Promise<void> {
  const started = process.hrtime.bigint();
  await task();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rate = bytes() > 0 ? `, ${(bytes() / MIB / seconds).toFixed(0)} MiB/s` : "";
  process.stdout.write(`${label.padEnd(36)} ${seconds.toFixed(2)} s${rate}\n`);
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "layerdisk-bench-registry-"));
  mkdirSync(join(root, "storage"));
  const registry = await startRegistry(root, join(root, "storage"), { kind: "none" }, "bench");
  try {
    await skopeoCopy(`oci:${join(testdata, "debian-python")}:latest`, `docker://${registry.host}/debian-python:latest`);
    const reference = `${registry.host}/debian-python:latest`;
    let bytes = 0;

    for (const concurrency of [1, 3]) {
      const cache = join(root, `cache-${concurrency}`);
      await timed(`pullImage cold, concurrency ${concurrency}`, () => bytes, async () => {
        const image = await pullImage(reference, { blobCache: cache, dockerConfig: false, concurrency });
        await image.done;
        bytes = image.layers.reduce((sum, layer) => sum + layer.descriptor.size, 0);
      });
    }
    await timed("pullImage, every blob cached", () => 0, async () => {
      const image = await pullImage(reference, { blobCache: join(root, "cache-3"), dockerConfig: false });
      await image.done;
    });
    await timed("skopeo copy to an OCI layout", () => bytes, async () => {
      execFileSync("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${reference}`, `oci:${join(root, "skopeo")}:latest`]);
    });
  } finally {
    await registry.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
