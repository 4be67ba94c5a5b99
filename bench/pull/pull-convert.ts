/**
 * Measures createChain on a registry reference (pull and convert, layer N
 * converted while later layers download) against the usual tool pipeline
 * for the same image: `skopeo copy` to an OCI layout, `umoci unpack`,
 * `mke2fs -d` into a raw file, and `qemu-img convert` to qcow2.
 * Both sides start from an empty cache and write an ext4 of the same size.
 * docker-registry serves debian-python from $LAYERDISK_TESTDATA on 127.0.0.1.
 *
 * Run: node --import tsx bench/pull/pull-convert.ts [RUNS]
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createChain } from "../../src/chain/create.js";
import { skopeoCopy, startRegistry } from "../../test/registry/helpers/registry-server.js";

const testdata = process.env.LAYERDISK_TESTDATA ?? "/var/cache/layerdisk-testdata";
const FS_SIZE = 8 * 1024 ** 3;

function seconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function run(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: ["ignore", "ignore", "inherit"], maxBuffer: 1 << 30 });
}

async function layerdiskRun(reference: string, store: string): Promise<number> {
  const started = process.hrtime.bigint();
  await createChain(reference, { store, fsSize: FS_SIZE, dockerConfig: false });
  return seconds(started);
}

/** Returns the seconds of each step of the tool pipeline, and the total. */
function toolRun(reference: string, work: string): Record<string, number> {
  const steps: Record<string, number> = {};
  const step = (name: string, action: () => void) => {
    const started = process.hrtime.bigint();
    action();
    steps[name] = seconds(started);
  };
  step("skopeo copy", () => run("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${reference}`, `oci:${join(work, "oci")}:latest`]));
  step("umoci unpack", () => run("umoci", ["unpack", "--image", `${join(work, "oci")}:latest`, join(work, "bundle")]));
  step("mke2fs -d", () =>
    run("mke2fs", ["-q", "-F", "-t", "ext4", "-d", join(work, "bundle", "rootfs"), join(work, "disk.raw"), `${FS_SIZE / 1024 ** 2}M`]),
  );
  step("qemu-img convert", () => run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", join(work, "disk.raw"), join(work, "disk.qcow2")]));
  steps.total = Object.values(steps).reduce((sum, value) => sum + value, 0);
  return steps;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 3);
  const root = mkdtempSync(join(tmpdir(), "layerdisk-bench-pull-"));
  mkdirSync(join(root, "storage"));
  const registry = await startRegistry(root, join(root, "storage"), { kind: "none" }, "bench");
  try {
    await skopeoCopy(`oci:${join(testdata, "debian-python")}:latest`, `docker://${registry.host}/debian-python:latest`);
    const reference = `${registry.host}/debian-python:latest`;
    for (let index = 0; index < runs; index += 1) {
      const layerdisk = await layerdiskRun(reference, join(root, `store-${index}`));
      const work = join(root, `tools-${index}`);
      mkdirSync(work);
      const tools = toolRun(reference, work);
      const detail = Object.entries(tools)
        .map(([name, value]) => `${name} ${value.toFixed(2)} s`)
        .join(", ");
      process.stdout.write(`run ${index + 1}: createChain ${layerdisk.toFixed(2)} s; tools ${detail}; ratio ${(tools.total! / layerdisk).toFixed(2)}\n`);
      rmSync(join(root, `store-${index}`), { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    }
  } finally {
    await registry.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
