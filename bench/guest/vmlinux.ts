import { readFile, rm, writeFile } from "node:fs/promises";

import { execTool } from "./exec.js";

/** Magic bytes that start an xz stream (the xz file format specification, section 2.1.1.1). */
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/**
 * Extracts the uncompressed ELF kernel from a bzImage whose payload is xz,
 * as in Debian's amd64 kernels (CONFIG_KERNEL_XZ=y), with the xz tool.
 * Returns false when there is no xz payload, xz fails, or the result is not
 * an ELF file.
 *
 * QEMU boots such an ELF file through the PVH entry point when the kernel
 * has CONFIG_PVH=y. That skips the firmware and the in-guest decompression,
 * which under TCG take several seconds of each boot.
 */
export async function extractVmlinux(bzImage: string, target: string): Promise<boolean> {
  const image = await readFile(bzImage);
  const start = image.indexOf(XZ_MAGIC);
  if (start < 0) return false;
  const payload = `${target}.xz`;
  await writeFile(payload, image.subarray(start));
  try {
    // --single-stream stops at the end of the first stream and ignores the
    // bzImage trailer that follows it.
    await execTool("sh", ["-c", 'xz -dc --single-stream "$1" > "$2"', "sh", payload, target]);
  } catch {
    // NOTE: without xz-utils the guest still boots, from the slower bzImage.
    return false;
  } finally {
    await rm(payload, { force: true });
  }
  const header = (await readFile(target)).subarray(0, 4);
  return header.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}

/** Returns true when the kernel config that ships with the package enables the PVH entry point. */
export async function configHasPvh(configFile: string): Promise<boolean> {
  const config = await readFile(configFile, "utf8");
  return /^CONFIG_PVH=y$/m.test(config);
}
