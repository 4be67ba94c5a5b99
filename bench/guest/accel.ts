import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { cacheKey, cacheSubdir } from "./cache.js";
import { execTool } from "./exec.js";
import { GUEST_KERNEL_CMDLINE, kernelImage, type GuestKernel } from "./kernel.js";
import { QEMU_PATH, readReport, runQemu, type Accelerator } from "./qemu.js";
import { buildBaseInitramfs, writeInitrd } from "./initramfs.js";
import { mkdtemp, rm } from "node:fs/promises";

/** A probe boot under KVM normally reaches user space in about a second; a hung one is killed after this. */
const PROBE_TIMEOUT_MS = 15_000;

export interface AcceleratorChoice {
  accel: Accelerator;
  /** Reason for the choice, for logs and benchmark records. */
  reason: string;
}

let memo: Promise<AcceleratorChoice> | undefined;

/** Boots a guest with no root disk under KVM and reports whether it ran a trivial command. */
async function probeKvm(kernel: GuestKernel): Promise<boolean> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), "layerdisk-probe-"));
  try {
    const initrd = path.join(workDir, "initrd.cpio");
    await writeInitrd(await buildBaseInitramfs(kernel), { command: "echo probe", env: { ROOT_TYPE: "none" } }, initrd);
    const resultFile = path.join(workDir, "result.bin");
    const args = ["-kernel", kernelImage(kernel), "-initrd", initrd, "-append", GUEST_KERNEL_CMDLINE];
    await runQemu({ args, accel: "kvm", resultFile, timeoutMs: PROBE_TIMEOUT_MS, memoryMiB: 256, cpus: 1 });
    const report = await readReport(resultFile);
    return report?.status === "ok" && report.stdout.trim() === "probe";
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

async function choose(kernel: GuestKernel): Promise<AcceleratorChoice> {
  const forced = process.env.LAYERDISK_GUEST_ACCEL;
  if (forced === "kvm" || forced === "tcg") return { accel: forced, reason: "set by LAYERDISK_GUEST_ACCEL" };
  if (!existsSync("/dev/kvm")) return { accel: "tcg", reason: "/dev/kvm is missing" };

  // The probe costs up to PROBE_TIMEOUT_MS when KVM hangs, so its result is
  // kept per QEMU build, guest kernel image (bzImage or PVH ELF) and host kernel.
  const { stdout: qemuVersion } = await execTool(QEMU_PATH, ["--version"]);
  const key = cacheKey(qemuVersion, kernelImage(kernel), os.release());
  const file = path.join(await cacheSubdir("accel"), `${key}.json`);
  if (existsSync(file)) return JSON.parse(await readFile(file, "utf8")) as AcceleratorChoice;

  const choice: AcceleratorChoice = (await probeKvm(kernel))
    ? { accel: "kvm", reason: "a KVM probe boot succeeded" }
    : { accel: "tcg", reason: `a KVM probe boot did not finish within ${PROBE_TIMEOUT_MS} ms` };
  await writeFile(file, `${JSON.stringify(choice)}\n`);
  return choice;
}

/**
 * Returns the accelerator to boot with and why: LAYERDISK_GUEST_ACCEL if
 * set, else KVM when a probe guest boots under it, else TCG.
 */
export function chooseAccelerator(kernel: GuestKernel): Promise<AcceleratorChoice> {
  memo ??= choose(kernel);
  return memo;
}

export async function detectAccelerator(kernel: GuestKernel): Promise<Accelerator> {
  return (await chooseAccelerator(kernel)).accel;
}
