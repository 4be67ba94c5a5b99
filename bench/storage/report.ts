import { formatRatio, ratio } from "../guest/report/format.js";
import type { GeneratedSection } from "../guest/report/section.js";
import type { StorageBenchResult } from "./bench.js";

const INTRO = `## Storage

Bytes on disk of each test image as a layerdisk chain, against the
image's uncompressed layers and against one flat ext4 image per image.
The chain is the layer files createChain returns, counted once each
without the per-VM overlay (an empty overlay is a few hundred KiB). The
flat image is \`mke2fs -t ext4 -d\` of the reference unpack into a sparse
raw file of the same size as the chain's filesystem, and that raw file
after \`qemu-img convert -O qcow2\`. Every size is allocated bytes
(\`st_blocks\` × 512), because all these files are sparse.`;

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

function tableRow(cells: readonly string[]): string {
  return `| ${cells.join(" | ")} |`;
}

/** Renders the per-image table and, when measured, the shared-base table. */
export function renderStorageTables(result: StorageBenchResult): string {
  const header = [
    "image", "layers", "compressed layers (MiB)", "uncompressed layers (MiB)", "chain (MiB)", "chain ÷ uncompressed",
    "flat raw ext4 (MiB)", "flat qcow2 (MiB)", "chain ÷ flat raw", "chain ÷ flat qcow2",
  ];
  const lines = [tableRow(header), tableRow(header.map((_, index) => (index === 0 ? "---" : "---:")))];
  for (const entry of result.images) {
    const compressed = entry.layers.reduce((sum, layer) => sum + layer.compressedBytes, 0);
    lines.push(tableRow([
      entry.image,
      String(entry.layers.length),
      mib(compressed),
      mib(entry.uncompressedBytes),
      mib(entry.chainAllocatedBytes),
      formatRatio(ratio(entry.chainAllocatedBytes, entry.uncompressedBytes)),
      mib(entry.flatRawAllocatedBytes),
      mib(entry.flatQcow2AllocatedBytes),
      formatRatio(ratio(entry.chainAllocatedBytes, entry.flatRawAllocatedBytes)),
      formatRatio(ratio(entry.chainAllocatedBytes, entry.flatQcow2AllocatedBytes)),
    ]));
  }
  const shared = result.shared;
  if (shared === undefined) return lines.join("\n");

  const sharedHeader = ["images", "layer files shared", "both chains (MiB)", "two flat raw ext4 (MiB)", "two flat qcow2 (MiB)", "chains ÷ flat raw", "chains ÷ flat qcow2"];
  return [
    ...lines,
    "",
    tableRow(sharedHeader),
    tableRow(sharedHeader.map((_, index) => (index === 0 ? "---" : "---:"))),
    tableRow([
      shared.images.join(" + "),
      String(shared.sharedFiles.length),
      mib(shared.chainsAllocatedBytes),
      mib(shared.flatRawAllocatedBytes),
      mib(shared.flatQcow2AllocatedBytes),
      formatRatio(ratio(shared.chainsAllocatedBytes, shared.flatRawAllocatedBytes)),
      formatRatio(ratio(shared.chainsAllocatedBytes, shared.flatQcow2AllocatedBytes)),
    ]),
  ].join("\n");
}

/** Returns the generated docs section for a storage run. */
export function storageSection(result: StorageBenchResult): GeneratedSection {
  const { machine } = result;
  const sizes = [...new Set(result.images.map((entry) => `${entry.virtualSize / 2 ** 30} GiB`))].join(", ");
  const body = [
    `- Command: \`${result.command}\`, run ${result.date}.`,
    `- Host: ${machine.cpuModel}, ${machine.hostCpus} CPUs (1-minute load average ${machine.loadAverage.start.toFixed(1)} at the start, ${machine.loadAverage.end.toFixed(1)} at the end), ${machine.hostMemoryGiB} GiB RAM, Linux ${machine.hostKernel}; files on ${result.hostFilesystem}. No guest boots, so no accelerator is involved, and the sizes do not depend on load.`,
    `- Tools: ${result.tools.mke2fs}, ${result.tools.qemuImg}.`,
    `- Filesystem size of chains and flat images: ${sizes} (createChain's default).`,
    "",
    renderStorageTables(result),
    "",
    "Raw numbers, per layer and per file: [benchmarks/storage.json](benchmarks/storage.json).",
  ].join("\n");
  return { name: "storage-bench", intro: INTRO, body };
}
