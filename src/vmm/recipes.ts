/**
 * Ready-made arguments for attaching a chain's overlay to each VMM as the
 * guest's root disk. docs/vmm.md explains each recipe.
 */

/** Kernel command-line options for an ext4 root on the first virtio-blk disk. */
export const ROOT_KERNEL_OPTIONS = "root=/dev/vda rw rootfstype=ext4";

/** `KRUN_DISK_FORMAT_QCOW2` in libkrun.h. */
const KRUN_DISK_FORMAT_QCOW2 = 1;

export interface VmmRecipes {
  kernelCmdline: string;
  /** QEMU: one `-blockdev` per chain file with its format pinned, and the virtio-blk device. */
  qemu: { args: string[] };
  /** Cloud Hypervisor: `--disk` with the image type pinned and backing files allowed. */
  cloudHypervisor: { args: string[] };
  /** crosvm: `--block` marked as the root device. */
  crosvm: { args: string[] };
  /** libkrun: the parameters of `krun_add_disk2(ctx_id, block_id, disk_path, disk_format, read_only)`. */
  libkrun: { blockId: string; diskPath: string; diskFormat: number; readOnly: boolean };
}

interface QemuNode {
  driver: "qcow2";
  "node-name": string;
  "read-only": boolean;
  file: { driver: "file"; filename: string };
  backing: string | null;
}

/**
 * Builds QEMU `-blockdev` nodes bottom to top. Each node names its backing
 * node explicitly (`null` for the bottom layer), so QEMU opens every file as
 * qcow2 without reading the backing name from the header or probing.
 */
function qemuArgs(disk: string, chain: readonly string[]): string[] {
  const args: string[] = [];
  let backing: string | null = null;
  chain.forEach((file, index) => {
    const node: QemuNode = {
      driver: "qcow2",
      "node-name": `layerdisk-layer-${index}`,
      "read-only": true,
      file: { driver: "file", filename: file },
      backing,
    };
    args.push("-blockdev", JSON.stringify(node));
    backing = node["node-name"];
  });
  const root: QemuNode = {
    driver: "qcow2",
    "node-name": "layerdisk-root",
    "read-only": false,
    file: { driver: "file", filename: disk },
    backing,
  };
  args.push("-blockdev", JSON.stringify(root));
  args.push("-device", "virtio-blk-pci,drive=layerdisk-root");
  return args;
}

export function vmmRecipes(disk: string, chain: readonly string[]): VmmRecipes {
  return {
    kernelCmdline: ROOT_KERNEL_OPTIONS,
    qemu: { args: qemuArgs(disk, chain) },
    // Cloud Hypervisor refuses qcow2 backing files unless backing_files=on.
    // NOTE: its option parser splits on commas, so the path must not contain one.
    cloudHypervisor: { args: ["--disk", `path=${disk},image_type=qcow2,backing_files=on`] },
    // `root` makes crosvm add root=/dev/vdX rw to the kernel command line.
    crosvm: { args: ["--block", `${disk},root`] },
    libkrun: { blockId: "root", diskPath: disk, diskFormat: KRUN_DISK_FORMAT_QCOW2, readOnly: false },
  };
}
