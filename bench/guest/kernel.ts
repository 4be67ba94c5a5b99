import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";

import { buildAtomically, cacheSubdir } from "./cache.js";
import { GuestError } from "./errors.js";
import { execTool } from "./exec.js";
import { ROOT_MODULES, resolveModuleOrder } from "./modules.js";
import { configHasPvh, extractVmlinux } from "./vmlinux.js";

/** A guest kernel and the modules the initramfs loads, in load order. */
export interface GuestKernel {
  /** Debian package the kernel came from, such as `linux-image-6.1.0-57-amd64`. */
  packageName: string;
  /** Kernel release, the directory name under /lib/modules. */
  release: string;
  /** Path of the bzImage. */
  vmlinuz: string;
  /** Uncompressed ELF kernel that QEMU can start through PVH, when the package allows it. */
  vmlinux?: string;
  /** Module files in load order. */
  modules: Array<{ name: string; file: string }>;
}

interface KernelManifest {
  packageName: string;
  release: string;
  modules: string[];
  /** True when `vmlinux` was extracted and the kernel has CONFIG_PVH=y. */
  pvh: boolean;
}

/** Version of the cached kernel layout; a change forces a fresh unpack. */
const CACHE_LAYOUT = "v2";

/** The metapackage whose dependency names the current Debian kernel. */
const KERNEL_METAPACKAGE = "linux-image-amd64";

/** Finds the versioned kernel package that the metapackage depends on. */
async function currentKernelPackage(): Promise<string> {
  const override = process.env.LAYERDISK_GUEST_KERNEL_PACKAGE;
  if (override !== undefined && override !== "") return override;
  const { stdout } = await execTool("apt-cache", ["depends", KERNEL_METAPACKAGE]);
  const match = /Depends:\s*(linux-image-\S+)/.exec(stdout);
  if (match?.[1] === undefined) {
    throw new GuestError("ERR_GUEST_KERNEL_NOT_FOUND", `apt-cache depends ${KERNEL_METAPACKAGE} lists no linux-image package; run apt-get update`);
  }
  return match[1];
}

/** Reads a kernel that an earlier call unpacked into `dir`. */
async function readCachedKernel(dir: string): Promise<GuestKernel> {
  const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as KernelManifest;
  return {
    packageName: manifest.packageName,
    release: manifest.release,
    vmlinuz: path.join(dir, "vmlinuz"),
    ...(manifest.pvh ? { vmlinux: path.join(dir, "vmlinux") } : {}),
    modules: manifest.modules.map((name) => ({ name, file: path.join(dir, "modules", `${name}.ko`) })),
  };
}

/** Downloads and unpacks `packageName`, then copies the bzImage and the needed modules into `target`. */
async function unpackKernel(packageName: string, target: string): Promise<void> {
  const scratch = await mkdtemp(path.join(path.dirname(target), "download-"));
  try {
    await execTool("apt-get", ["download", "-q", packageName], { cwd: scratch });
    const deb = (await readdir(scratch)).find((name) => name.endsWith(".deb"));
    if (deb === undefined) throw new GuestError("ERR_GUEST_KERNEL_NOT_FOUND", `apt-get download ${packageName} wrote no .deb file`);
    const tree = path.join(scratch, "tree");
    await execTool("dpkg-deb", ["-x", path.join(scratch, deb), tree]);

    const vmlinuz = (await readdir(path.join(tree, "boot"))).find((name) => name.startsWith("vmlinuz-"));
    if (vmlinuz === undefined) throw new GuestError("ERR_GUEST_KERNEL_NOT_FOUND", `${packageName} contains no boot/vmlinuz-*`);
    const release = vmlinuz.slice("vmlinuz-".length);
    const order = await resolveModuleOrder(path.join(tree, "lib/modules", release), ROOT_MODULES);

    await mkdir(path.join(target, "modules"), { recursive: true });
    await copyFile(path.join(tree, "boot", vmlinuz), path.join(target, "vmlinuz"));
    for (const module of order) await copyFile(module.file, path.join(target, "modules", `${module.name}.ko`));
    const pvh =
      (await configHasPvh(path.join(tree, "boot", `config-${release}`))) &&
      (await extractVmlinux(path.join(target, "vmlinuz"), path.join(target, "vmlinux")));
    const manifest: KernelManifest = { packageName, release, modules: order.map((module) => module.name), pvh };
    await writeFile(path.join(target, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Returns Debian's current amd64 kernel with the modules the guest needs,
 * downloading it with apt-get on first use. The cache is keyed by the
 * versioned package name, so a new kernel in the archive is fetched anew.
 */
export async function fetchKernel(): Promise<GuestKernel> {
  const packageName = await currentKernelPackage();
  const dir = path.join(await cacheSubdir("kernel"), `${packageName}-${CACHE_LAYOUT}`);
  if (!existsSync(path.join(dir, "manifest.json"))) {
    await buildAtomically(dir, (temporary) => unpackKernel(packageName, temporary));
  }
  return readCachedKernel(dir);
}

/** Kernel command line: console on the first serial port, and power off instead of hanging on a panic (with -no-reboot). */
export const GUEST_KERNEL_CMDLINE = "console=ttyS0 panic=-1 quiet";

/**
 * Picks the ELF kernel (PVH boot) when one was extracted, because it boots
 * several seconds faster under TCG. LAYERDISK_GUEST_PVH=0 forces the bzImage.
 */
export function kernelImage(kernel: GuestKernel): string {
  if (process.env.LAYERDISK_GUEST_PVH === "0" || kernel.vmlinux === undefined) return kernel.vmlinuz;
  return kernel.vmlinux;
}
