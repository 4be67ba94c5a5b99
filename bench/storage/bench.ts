import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { cacheSubdir, testdataDir } from "../guest/cache.js";
import { makeExt4Image } from "../guest/disks.js";
import { GuestError } from "../guest/errors.js";
import { execTool } from "../guest/exec.js";
import { allocatedBytes, benchStoreRoot, freshLayerdiskChain } from "../guest/layerdisk-chain.js";

const FULL_IMAGES = ["debian-minbase", "debian-python", "edge", "debian-python-zstd"] as const;
const QUICK_IMAGES = ["debian-minbase"] as const;
/** Two images whose chains share the bottom layer file. */
const SHARED_PAIR = ["debian-minbase", "debian-python"] as const;

export interface LayerSize {
  mediaType: string;
  compressedBytes: number;
  uncompressedBytes: number;
}

export interface ImageStorage {
  image: string;
  layers: LayerSize[];
  /** Sum of the uncompressed tar sizes of the layers. */
  uncompressedBytes: number;
  /** Layer files of the chain createChain returned (overlay excluded), bottom to top. */
  chainFiles: Array<{ file: string; allocatedBytes: number }>;
  chainAllocatedBytes: number;
  /** Allocated bytes of `mke2fs -d` of the unpacked tree into a sparse raw file of the chain's size. */
  flatRawAllocatedBytes: number;
  /** Allocated bytes of that raw file after `qemu-img convert -O qcow2`. */
  flatQcow2AllocatedBytes: number;
  virtualSize: number;
}

export interface StorageBenchResult {
  suite: "storage";
  date: string;
  quick: boolean;
  command: string;
  machine: { cpuModel: string; hostCpus: number; hostMemoryGiB: number; hostKernel: string; loadAverage: { start: number; end: number } };
  tools: { mke2fs: string; qemuImg: string };
  /** Filesystem that held the files whose allocation was counted. */
  hostFilesystem: string;
  images: ImageStorage[];
  /** The two images of SHARED_PAIR together, when both were measured. */
  shared?: {
    images: string[];
    /** Allocated bytes of the distinct layer files of both chains. */
    chainsAllocatedBytes: number;
    /** Layer files both chains use. */
    sharedFiles: string[];
    flatRawAllocatedBytes: number;
    flatQcow2AllocatedBytes: number;
  };
}

const DECOMPRESSORS: Readonly<Record<string, string[]>> = {
  "application/vnd.oci.image.layer.v1.tar": ["cat"],
  "application/vnd.oci.image.layer.v1.tar+gzip": ["gzip", "-dc"],
  "application/vnd.docker.image.rootfs.diff.tar.gzip": ["gzip", "-dc"],
  "application/vnd.oci.image.layer.v1.tar+zstd": ["zstd", "-dcq"],
};

/** Returns the byte count of a layer blob after decompression, with the gzip or zstd command-line tool. */
function uncompressedSize(blob: string, mediaType: string): Promise<number> {
  const decompressor = DECOMPRESSORS[mediaType];
  if (decompressor === undefined) throw new GuestError("ERR_GUEST_INVALID_ARG", `layer ${blob} has media type ${mediaType}, which the storage benchmark cannot decompress`);
  const [command, ...args] = decompressor;
  return new Promise((resolve, reject) => {
    const child = spawn(command!, [...args, blob], { stdio: ["ignore", "pipe", "pipe"] });
    let bytes = 0;
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (bytes += chunk.length));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(bytes);
      else reject(new GuestError("ERR_GUEST_TOOL_FAILED", `${command} ${args.join(" ")} ${blob} failed with exit status ${code}: ${stderr.trim()}`));
    });
  });
}

function blobPath(layout: string, digest: string): string {
  const [algorithm, hex] = digest.split(":");
  return path.join(layout, "blobs", algorithm!, hex!);
}

/** Reads the layer descriptors of the `latest` manifest of an OCI layout and measures each layer. */
async function layerSizes(layout: string): Promise<LayerSize[]> {
  const index = JSON.parse(await readFile(path.join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((manifest) => manifest.annotations?.["org.opencontainers.image.ref.name"] === "latest") ?? index.manifests[0];
  if (entry === undefined) throw new GuestError("ERR_GUEST_INVALID_ARG", `${layout}/index.json lists no manifest`);
  const manifest = JSON.parse(await readFile(blobPath(layout, entry.digest), "utf8")) as { layers: Array<{ mediaType: string; digest: string; size: number }> };
  const sizes: LayerSize[] = [];
  for (const layer of manifest.layers) {
    sizes.push({ mediaType: layer.mediaType, compressedBytes: layer.size, uncompressedBytes: await uncompressedSize(blobPath(layout, layer.digest), layer.mediaType) });
  }
  return sizes;
}

async function measureImage(image: string, workDir: string, log: (line: string) => void): Promise<ImageStorage> {
  const layout = path.join(testdataDir(), image);
  const fresh = await freshLayerdiskChain(`oci-layout:${layout}:latest`, path.join(workDir, "overlay.qcow2"));
  await fresh.release();
  const chainFiles = [];
  for (const file of fresh.record.files) chainFiles.push({ file, allocatedBytes: await allocatedBytes(file) });
  const layers = await layerSizes(layout);

  const raw = path.join(workDir, `${image}.ext4`);
  const qcow2 = path.join(workDir, `${image}.qcow2`);
  await makeExt4Image(path.join(testdataDir(), `${image}.rootfs`), raw, Math.ceil(fresh.record.virtualSize / 2 ** 20));
  await execTool("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, qcow2]);
  const result: ImageStorage = {
    image,
    layers,
    uncompressedBytes: layers.reduce((sum, layer) => sum + layer.uncompressedBytes, 0),
    chainFiles,
    chainAllocatedBytes: fresh.record.allocatedBytes,
    flatRawAllocatedBytes: await allocatedBytes(raw),
    flatQcow2AllocatedBytes: await allocatedBytes(qcow2),
    virtualSize: fresh.record.virtualSize,
  };
  await rm(raw);
  await rm(qcow2);
  log(`storage bench: ${image}: chain ${(result.chainAllocatedBytes / 2 ** 20).toFixed(1)} MiB, flat raw ${(result.flatRawAllocatedBytes / 2 ** 20).toFixed(1)} MiB`);
  return result;
}

/**
 * Measures the bytes on disk of each test image's layerdisk chain against
 * its uncompressed layers and against one flat ext4 image of its unpacked
 * tree, as a sparse raw file and as qcow2. Sizes are allocated bytes
 * (st_blocks × 512), because every file involved is sparse.
 */
export async function runStorageBenchmark(options: { quick: boolean; command: string; log: (line: string) => void }): Promise<StorageBenchResult> {
  const started = new Date();
  const loadAtStart = os.loadavg()[0] ?? 0;
  const workDir = await mkdtemp(path.join(await cacheSubdir("bench"), "storage-"));
  const images: ImageStorage[] = [];
  try {
    for (const image of options.quick ? QUICK_IMAGES : FULL_IMAGES) images.push(await measureImage(image, workDir, options.log));
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }

  const pair = SHARED_PAIR.map((name) => images.find((entry) => entry.image === name));
  let shared: StorageBenchResult["shared"];
  if (pair.every((entry) => entry !== undefined)) {
    const measured = pair as ImageStorage[];
    const distinct = new Map<string, number>();
    for (const entry of measured) for (const file of entry.chainFiles) distinct.set(file.file, file.allocatedBytes);
    const [first, second] = measured.map((entry) => new Set(entry.chainFiles.map((file) => file.file)));
    shared = {
      images: [...SHARED_PAIR],
      chainsAllocatedBytes: [...distinct.values()].reduce((sum, bytes) => sum + bytes, 0),
      sharedFiles: [...first!].filter((file) => second!.has(file)),
      flatRawAllocatedBytes: measured.reduce((sum, entry) => sum + entry.flatRawAllocatedBytes, 0),
      flatQcow2AllocatedBytes: measured.reduce((sum, entry) => sum + entry.flatQcow2AllocatedBytes, 0),
    };
  }

  const { stderr: mke2fs } = await execTool("mke2fs", ["-V"]);
  const { stdout: qemuImg } = await execTool("qemu-img", ["--version"]);
  const { stdout: filesystem } = await execTool("findmnt", ["-n", "-o", "FSTYPE,SOURCE", "-T", benchStoreRoot()]);
  return {
    suite: "storage",
    date: started.toISOString(),
    quick: options.quick,
    command: options.command,
    machine: {
      cpuModel: os.cpus()[0]?.model ?? "unknown",
      hostCpus: os.cpus().length,
      hostMemoryGiB: Math.round(os.totalmem() / 2 ** 30),
      hostKernel: os.release(),
      loadAverage: { start: loadAtStart, end: os.loadavg()[0] ?? 0 },
    },
    tools: { mke2fs: mke2fs.split("\n")[0] ?? "", qemuImg: qemuImg.split("\n")[0] ?? "" },
    hostFilesystem: filesystem.trim().replace(/\s+/g, " "),
    images,
    ...(shared === undefined ? {} : { shared }),
  };
}
