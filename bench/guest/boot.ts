import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { detectAccelerator } from "./accel.js";
import { blockdevArgs, readBackingChain } from "./blockdev.js";
import { GuestError } from "./errors.js";
import { buildBaseInitramfs, writeInitrd, type GuestJob } from "./initramfs.js";
import { fetchKernel, GUEST_KERNEL_CMDLINE, kernelImage, type GuestKernel } from "./kernel.js";
import { readReport, runQemu, type Accelerator } from "./qemu.js";
import { startVirtiofsd, type VirtiofsCache, type VirtiofsDaemon } from "./virtiofsd.js";

export interface BootOptions {
  /** Shell command run by the root's /bin/sh, or by busybox sh when there is no root. */
  command: string;
  /**
   * Root disk for virtio-blk: a raw ext4 image or the top of a qcow2 chain.
   * Each image's format is read with `qemu-img info --backing-chain` and
   * pinned with -blockdev.
   */
  disk?: string;
  /**
   * QEMU arguments that attach the root disk as the first virtio-blk device
   * (/dev/vda), used as given instead of building them from `disk`, such as
   * the `-blockdev` and `-device` arguments of createChain's QEMU recipe.
   */
  diskArgs?: string[];
  /** Host directory shared with virtiofsd and mounted as the root instead of a disk. */
  virtiofsDir?: string;
  /** virtiofsd cache policy; default `auto`. */
  virtiofsCache?: VirtiofsCache;
  /** Mount the root read-only (and open the disk read-only); default false. */
  readOnly?: boolean;
  /** Files placed in /run/layerdisk inside the root, by plain file name. */
  files?: Record<string, string | Uint8Array>;
  kernel?: GuestKernel;
  /** Default: KVM if a probe boot succeeds, else TCG. */
  accel?: Accelerator;
  /** Kill QEMU after this many milliseconds; default 120 000. */
  timeoutMs?: number;
  memoryMiB?: number;
  cpus?: number;
}

export interface BootResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  accel: Accelerator;
  /** Milliseconds from starting QEMU until /init started the command, measured on the host. */
  bootMs: number;
  /** Milliseconds from starting QEMU until it exited. */
  totalMs: number;
  console: string;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const VIRTIOFS_TAG = "rootfs";

function rootEnv(options: BootOptions): Record<string, string> {
  const mode = options.readOnly === true ? "ro" : "rw";
  if (options.disk !== undefined || options.diskArgs !== undefined) return { ROOT_TYPE: "blk", ROOT_DEV: "/dev/vda", ROOT_FSTYPE: "ext4", ROOT_OPTIONS: mode };
  if (options.virtiofsDir !== undefined) return { ROOT_TYPE: "virtiofs", VIRTIOFS_TAG, ROOT_OPTIONS: mode };
  return { ROOT_TYPE: "none" };
}

async function diskArgs(disk: string, readOnly: boolean): Promise<string[]> {
  const chain = await readBackingChain(disk);
  const { args, nodeName } = blockdevArgs(chain, readOnly);
  return [...args, "-device", `virtio-blk-pci,drive=${nodeName}`];
}

function virtiofsArgs(socketPath: string): string[] {
  return ["-chardev", `socket,id=fs0,path=${socketPath}`, "-device", `vhost-user-fs-pci,chardev=fs0,tag=${VIRTIOFS_TAG}`];
}

function validate(options: BootOptions): void {
  if (options.disk !== undefined && options.virtiofsDir !== undefined) {
    throw new GuestError("ERR_GUEST_INVALID_ARG", "bootGuest takes either disk or virtiofsDir, not both");
  }
  if (options.diskArgs !== undefined && (options.disk !== undefined || options.virtiofsDir !== undefined)) {
    throw new GuestError("ERR_GUEST_INVALID_ARG", "bootGuest takes diskArgs instead of disk or virtiofsDir, not with them");
  }
}

/**
 * Boots a guest from a disk or a virtio-fs directory, runs `command` in it
 * and returns its output and exit status. QEMU and virtiofsd are stopped
 * before this returns or throws. A command that exits non-zero is a normal
 * result. A guest that cannot mount its root or never reports throws a
 * GuestError, with the serial console attached.
 */
export async function bootGuest(options: BootOptions): Promise<BootResult> {
  validate(options);
  const kernel = options.kernel ?? (await fetchKernel());
  const accel = options.accel ?? (await detectAccelerator(kernel));
  const baseInitramfs = await buildBaseInitramfs(kernel);
  const workDir = await mkdtemp(path.join(os.tmpdir(), "layerdisk-boot-"));
  let daemon: VirtiofsDaemon | undefined;
  try {
    const job: GuestJob = { command: options.command, env: rootEnv(options), files: options.files ?? {} };
    const initrd = path.join(workDir, "initrd.cpio");
    await writeInitrd(baseInitramfs, job, initrd);

    const args = ["-kernel", kernelImage(kernel), "-initrd", initrd, "-append", GUEST_KERNEL_CMDLINE];
    if (options.disk !== undefined) args.push(...(await diskArgs(options.disk, options.readOnly === true)));
    if (options.diskArgs !== undefined) args.push(...options.diskArgs);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (options.virtiofsDir !== undefined) {
      const socketPath = path.join(workDir, "virtiofs.sock");
      daemon = await startVirtiofsd(options.virtiofsDir, socketPath, options.virtiofsCache ?? "auto", timeoutMs);
      args.push(...virtiofsArgs(daemon.socketPath));
    }

    const resultFile = path.join(workDir, "result.bin");
    const outcome = await runQemu({ args, accel, resultFile, timeoutMs, memoryMiB: options.memoryMiB ?? 1024, cpus: options.cpus ?? 2 });
    const report = await readReport(resultFile);

    if (report === undefined) {
      const daemonLog = daemon === undefined ? "" : `\nvirtiofsd: ${daemon.log()}`;
      if (outcome.timedOut) {
        throw new GuestError("ERR_GUEST_TIMEOUT", `guest timed out after ${timeoutMs} ms (accelerator ${accel})${daemonLog}`, { console: outcome.console });
      }
      const consoleTail = outcome.console.trim().split("\n").slice(-5).join("\n");
      throw new GuestError(
        "ERR_GUEST_NO_RESULT",
        `QEMU exited with status ${outcome.exitCode} before the guest reported a result. Last console lines:\n${consoleTail}${daemonLog}`,
        { console: outcome.console },
      );
    }
    if (report.status === "error") {
      throw new GuestError("ERR_GUEST_SETUP_FAILED", `guest /init failed at stage ${report.stage}: ${report.stderr.trim()}`, { console: outcome.console });
    }
    return {
      stdout: report.stdout,
      stderr: report.stderr,
      exitCode: report.exitCode,
      accel,
      bootMs: outcome.bootMs ?? outcome.totalMs,
      totalMs: outcome.totalMs,
      console: outcome.console,
    };
  } finally {
    await daemon?.stop();
    await rm(workDir, { recursive: true, force: true });
  }
}
