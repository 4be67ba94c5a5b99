import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import { buildAtomically, cacheKey, cacheSubdir } from "./cache.js";
import { encodeCpio, type CpioEntry } from "./cpio.js";
import { GuestError } from "./errors.js";
import { INIT_SCRIPT } from "./init-script.js";
import type { GuestKernel } from "./kernel.js";

/** The statically linked busybox from Debian's busybox-static package. */
export const BUSYBOX_PATH = "/bin/busybox";

async function readBusybox(): Promise<Buffer> {
  try {
    return await readFile(BUSYBOX_PATH);
  } catch (error) {
    throw new GuestError("ERR_GUEST_SETUP_FAILED", `cannot read ${BUSYBOX_PATH}; install busybox-static`, { cause: error, file: BUSYBOX_PATH });
  }
}

/** Lists the base archive: busybox, the kernel modules, /init and the mount points it uses. */
async function baseEntries(kernel: GuestKernel, busybox: Buffer): Promise<CpioEntry[]> {
  const entries: CpioEntry[] = [
    ...["bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp", "run", "newroot"].map(
      (dir): CpioEntry => ({ type: "dir", path: dir }),
    ),
    // The kernel opens /dev/console for PID 1 before /init can mount devtmpfs.
    { type: "chardev", path: "dev/console", major: 5, minor: 1 },
    { type: "file", path: "bin/busybox", data: busybox, mode: 0o755 },
    { type: "symlink", path: "bin/sh", target: "busybox" },
    { type: "file", path: "init", data: INIT_SCRIPT, mode: 0o755 },
    { type: "file", path: "etc/layerdisk-modules", data: `${kernel.modules.map((module) => module.name).join("\n")}\n` },
  ];
  for (const module of kernel.modules) {
    entries.push({ type: "file", path: `lib/modules/${module.name}.ko`, data: await readFile(module.file) });
  }
  return entries;
}

/**
 * Returns the path of the cached base initramfs for `kernel`, building it
 * when busybox, a module or the init script changed.
 */
export async function buildBaseInitramfs(kernel: GuestKernel): Promise<string> {
  const busybox = await readBusybox();
  const entries = await baseEntries(kernel, busybox);
  const archive = encodeCpio(entries);
  const target = path.join(await cacheSubdir("initramfs"), `base-${cacheKey(archive)}.cpio`);
  if (!existsSync(target)) await buildAtomically(target, (temporary) => writeFile(temporary, archive));
  return target;
}

/** Work for one boot: the shell command, the root description for /init, and extra files. */
export interface GuestJob {
  command: string;
  env: Record<string, string>;
  /** Files copied to /run/layerdisk inside the root; names must not contain `/`. */
  files?: Record<string, string | Uint8Array>;
}

/** Quotes `value` for a POSIX shell assignment. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * Encodes a job as a second cpio archive. The kernel unpacks concatenated
 * archives in order, so the cached base stays untouched and only this small
 * archive changes from boot to boot.
 */
export function encodeJobArchive(job: GuestJob): Buffer {
  const env = Object.entries(job.env)
    .map(([name, value]) => `${name}=${shellQuote(value)}\n`)
    .join("");
  const entries: CpioEntry[] = [
    { type: "dir", path: "job" },
    { type: "dir", path: "job/files" },
    { type: "file", path: "job/command", data: job.command },
    { type: "file", path: "job/env", data: env },
  ];
  for (const [name, data] of Object.entries(job.files ?? {})) {
    if (name.includes("/") || name === "" || name === "." || name === "..") {
      throw new GuestError("ERR_GUEST_INVALID_ARG", `invalid guest file name ${JSON.stringify(name)}: use a plain file name`);
    }
    entries.push({ type: "file", path: `job/files/${name}`, data, mode: 0o755 });
  }
  return encodeCpio(entries);
}

/** Writes the initrd for one boot: the base archive followed by the job archive. */
export async function writeInitrd(baseInitramfs: string, job: GuestJob, target: string): Promise<void> {
  const base = await readFile(baseInitramfs);
  await writeFile(target, Buffer.concat([base, encodeJobArchive(job)]));
}
