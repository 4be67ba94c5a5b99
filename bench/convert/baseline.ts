/**
 * The baseline pipeline: unpack the image with `umoci unpack`, build ext4
 * from the tree with `mke2fs -d`, convert the raw image with
 * `qemu-img convert -O qcow2`, and fsync the result (createChain fsyncs its
 * layer files too). Each step runs under `/usr/bin/time` for its peak RSS.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";

const run = promisify(execFile);

/** GNU time; its `%M` format is the peak RSS of the command, in KiB. */
const TIME = "/usr/bin/time";

export interface BaselineStep {
  command: string;
  seconds: number;
  peakRssMiB: number;
}

export interface BaselineRun {
  seconds: number;
  steps: BaselineStep[];
  /** The largest peak RSS of the steps, which run one after another. */
  peakRssMiB: number;
}

async function timedStep(argv: string[], workDir: string): Promise<BaselineStep> {
  const rssFile = path.join(workDir, "time.out");
  const start = performance.now();
  await run(TIME, ["-f", "%M", "-o", rssFile, ...argv], { maxBuffer: 64 << 20 });
  const seconds = (performance.now() - start) / 1000;
  const peakKiB = Number((await readFile(rssFile, "utf8")).trim().split("\n").at(-1));
  return { command: argv.join(" "), seconds, peakRssMiB: peakKiB / 1024 };
}

/**
 * Converts the image at `ociDir:tag` into one qcow2 file under `workDir`,
 * which must not exist yet, and removes the files afterwards.
 * `fsSize` is the ext4 size in bytes, the same as createChain's.
 */
export async function runBaseline(ociDir: string, tag: string, workDir: string, fsSize: number): Promise<BaselineRun> {
  const bundle = path.join(workDir, "bundle");
  const raw = path.join(workDir, "rootfs.raw");
  const qcow2 = path.join(workDir, "rootfs.qcow2");
  await mkdir(workDir, { recursive: true });
  try {
    const steps = [
      await timedStep(["umoci", "unpack", "--image", `${ociDir}:${tag}`, bundle], workDir),
      await timedStep(["mke2fs", "-q", "-F", "-t", "ext4", "-d", path.join(bundle, "rootfs"), raw, `${fsSize / 1024}k`], workDir),
      await timedStep(["qemu-img", "convert", "-O", "qcow2", raw, qcow2], workDir),
      await timedStep(["sync", qcow2], workDir),
    ];
    const seconds = steps.reduce((sum, step) => sum + step.seconds, 0);
    return { seconds, steps, peakRssMiB: Math.max(...steps.map((step) => step.peakRssMiB)) };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
