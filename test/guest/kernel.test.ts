import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";

import { describe, expect, it } from "vitest";

import { fetchKernel } from "../../bench/guest/kernel.js";

describe("fetchKernel", () => {
  it("orders modules after their dependencies", async () => {
    const kernel = await fetchKernel();
    const names = kernel.modules.map((module) => module.name);
    const position = (name: string): number => {
      expect(names).toContain(name);
      return names.indexOf(name);
    };

    expect(existsSync(kernel.vmlinuz)).toBe(true);
    expect(position("virtio_ring")).toBeLessThan(position("virtio"));
    expect(position("virtio")).toBeLessThan(position("virtio_pci"));
    expect(position("virtio_pci_modern_dev")).toBeLessThan(position("virtio_pci"));
    expect(position("virtio_pci_legacy_dev")).toBeLessThan(position("virtio_pci"));
    expect(position("virtio")).toBeLessThan(position("virtio_blk"));
    // ext4 and jbd2 ask for crc32c through a softdep, needed for metadata_csum.
    expect(position("crc32c_generic")).toBeLessThan(position("jbd2"));
    expect(position("jbd2")).toBeLessThan(position("ext4"));
    expect(position("mbcache")).toBeLessThan(position("ext4"));
    expect(position("crc16")).toBeLessThan(position("ext4"));
    expect(position("fuse")).toBeLessThan(position("virtiofs"));
  }, 300_000);

  it("extracts an ELF kernel for PVH boot", async () => {
    const kernel = await fetchKernel();
    expect(kernel.vmlinux).toBeDefined();
    const header = (await readFile(kernel.vmlinux!)).subarray(0, 4);
    expect(header.toString("latin1")).toBe("\x7fELF");
  }, 300_000);
});
