import { existsSync } from "node:fs";
import path from "node:path";

import type { BootOptions } from "./boot.js";
import { copyImage, createOverlay } from "./disks.js";
import { execTool } from "./exec.js";
import type { ModeId } from "./results.js";

/** Inputs every mode is prepared from: the same tree as a directory, a flat image and a chain. */
export interface BenchInputs {
  /** Directory served over virtio-fs. The benchmark writes into it, so it must be a private copy. */
  virtiofsDir: string;
  /** Flat raw ext4 image of the tree; each run boots a fresh copy. */
  rawImage: string;
  /** Top of a qcow2 chain holding the tree; each run boots a fresh overlay on it. */
  chainTop: string;
  /** Scratch directory for per-run copies and overlays. */
  workDir: string;
}

export interface BenchMode {
  id: ModeId;
  label: string;
  /** Returns the boot options for the root and a one-line description of it. */
  prepare(inputs: BenchInputs): Promise<{ root: Pick<BootOptions, "disk" | "virtiofsDir" | "virtiofsCache">; description: string }>;
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
    prepare: async (inputs) => {
      const overlay = path.join(inputs.workDir, "overlay.qcow2");
      await execTool("rm", ["-f", overlay]);
      await createOverlay(inputs.chainTop, "qcow2", overlay);
      return { root: { disk: overlay }, description: `fresh qcow2 overlay on ${path.basename(inputs.chainTop)}` };
    },
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
