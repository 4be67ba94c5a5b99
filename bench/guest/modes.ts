import { existsSync } from "node:fs";
import path from "node:path";

import { readBackingChain } from "./blockdev.js";
import type { BootOptions } from "./boot.js";
import { copyImage, createOverlay } from "./disks.js";
import { execTool } from "./exec.js";
import { allocatedBytes, freshLayerdiskChain, type ChainRecord } from "./layerdisk-chain.js";
import type { ModeId } from "./results.js";

/** Inputs every mode is prepared from: the same tree as a directory, a flat image and a chain. */
export interface BenchInputs {
  /** Directory served over virtio-fs. The benchmark writes into it, so it must be a private copy. */
  virtiofsDir: string;
  /** Flat raw ext4 image of the tree; each run boots a fresh copy. */
  rawImage: string;
  /**
   * The chain to boot: an image reference that createChain converts into the
   * benchmark store, or the top file of an existing qcow2 chain. Each run
   * boots a fresh overlay on it.
   */
  chain: { reference: string } | { top: string };
  /** Scratch directory for per-run copies and overlays. */
  workDir: string;
}

export interface BenchMode {
  id: ModeId;
  label: string;
  /** Returns the boot options for the root and a one-line description of it. */
  prepare(inputs: BenchInputs): Promise<PreparedRoot>;
}

export interface PreparedRoot {
  root: Pick<BootOptions, "disk" | "virtiofsDir" | "virtiofsCache">;
  description: string;
  /** The chain under the overlay, for qcow2 modes. */
  chain?: ChainRecord;
  /** Deletes what `prepare` registered outside the work directory. */
  release?: () => Promise<void>;
}

/** Describes a chain that this benchmark did not make, from `qemu-img info --backing-chain`. */
async function describeChainFile(top: string): Promise<ChainRecord> {
  const images = (await readBackingChain(top)).reverse();
  const { stdout } = await execTool("qemu-img", ["info", "--output=json", "-U", top]);
  const info = JSON.parse(stdout) as { "virtual-size": number };
  let bytes = 0;
  for (const image of images) bytes += await allocatedBytes(image.filename);
  return {
    reference: "file",
    chainIds: [],
    files: images.map((image) => image.filename),
    fileCount: images.length + 1,
    allocatedBytes: bytes,
    virtualSize: info["virtual-size"],
  };
}

async function prepareChain(inputs: BenchInputs): Promise<PreparedRoot> {
  const overlay = path.join(inputs.workDir, "overlay.qcow2");
  await execTool("rm", ["-f", overlay]);
  if ("top" in inputs.chain) {
    await createOverlay(inputs.chain.top, "qcow2", overlay);
    return { root: { disk: overlay }, description: `fresh qcow2 overlay on ${inputs.chain.top}`, chain: await describeChainFile(inputs.chain.top) };
  }
  const fresh = await freshLayerdiskChain(inputs.chain.reference, overlay);
  return {
    root: { disk: fresh.disk },
    description: `fresh createChain overlay on ${fresh.record.files.length} layerdisk layer files of ${inputs.chain.reference}`,
    chain: fresh.record,
    release: fresh.release,
  };
}

export const BENCH_MODES: readonly BenchMode[] = [
  {
    id: "virtiofs-auto",
    label: "virtio-fs, cache=auto",
    prepare: async (inputs) => ({
      root: { virtiofsDir: inputs.virtiofsDir, virtiofsCache: "auto" },
      description: "virtiofsd -o cache=auto over a copy of the unpacked tree",
    }),
  },
  {
    id: "virtiofs-always",
    label: "virtio-fs, cache=always",
    prepare: async (inputs) => ({
      root: { virtiofsDir: inputs.virtiofsDir, virtiofsCache: "always" },
      description: "virtiofsd -o cache=always over a copy of the unpacked tree",
    }),
  },
  {
    id: "qcow2-chain",
    label: "qcow2 chain, virtio-blk",
    prepare: prepareChain,
  },
  {
    id: "raw-ext4",
    label: "flat raw ext4, virtio-blk",
    prepare: async (inputs) => {
      const copy = path.join(inputs.workDir, "flat.ext4");
      if (existsSync(copy)) await execTool("rm", ["-f", copy]);
      await copyImage(inputs.rawImage, copy);
      return { root: { disk: copy }, description: "copy of the mke2fs -d image" };
    },
  },
];
