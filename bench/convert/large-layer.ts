/**
 * Builds, once, an OCI layout with one large gzip layer for the peak-RSS
 * check, and caches it outside the repository. The tar (about 1 GiB) contains
 * random files, which gzip cannot shrink, and many smaller text files that
 * compress well. The layout is rebuilt only when its folder is missing.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";

export const LARGE_LAYER_DIR = process.env.LAYERDISK_BENCH_CACHE
  ? path.join(process.env.LAYERDISK_BENCH_CACHE, "large-layer")
  : "/var/cache/layerdisk-bench/large-layer";

const RANDOM_FILES = 4;
const RANDOM_FILE_BYTES = 128 << 20;
const TEXT_FILES = 8192;
const TEXT_FILE_BYTES = 64 << 10;

function sha256Transform(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
}

/** Builds the text of one file: numbered lines, distinct per file, about 8 times smaller after gzip -1. */
function textFile(index: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let line = 0; length < TEXT_FILE_BYTES; line++) {
    const text = `file ${index} line ${line} value ${(index * 7919 + line * 104729) % 1000003} lorem ipsum dolor sit amet\n`;
    lines.push(text);
    length += text.length;
  }
  return Buffer.from(lines.join("").slice(0, TEXT_FILE_BYTES));
}

async function writeSourceTree(root: string): Promise<void> {
  await mkdir(path.join(root, "random"), { recursive: true });
  for (let i = 0; i < RANDOM_FILES; i++) {
    const out = createWriteStream(path.join(root, "random", `blob-${i}.bin`));
    for (let written = 0; written < RANDOM_FILE_BYTES; written += 1 << 20) {
      if (!out.write(randomBytes(1 << 20))) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    }
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }
  for (let i = 0; i < TEXT_FILES; i++) {
    const dir = path.join(root, "text", `d${Math.floor(i / 256)}`);
    if (i % 256 === 0) await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `f${i}.txt`), textFile(i));
  }
}

async function writeBlob(blobsDir: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = createHash("sha256").update(data).digest("hex");
  await writeFile(path.join(blobsDir, hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

/** Tars `root` with GNU tar, gzips it, and writes the blob and the OCI layout around it. */
async function writeLayout(root: string, layoutDir: string): Promise<void> {
  const blobsDir = path.join(layoutDir, "blobs", "sha256");
  await mkdir(blobsDir, { recursive: true });

  const tar = spawn("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1700000000", "-C", root, "-cf", "-", "."], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const tarExit = new Promise<void>((resolve, reject) =>
    tar.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`tar exited with code ${code} while packing ${root}`)))),
  );
  const diffHash = createHash("sha256");
  const blobHash = createHash("sha256");
  const layerTemp = path.join(blobsDir, "layer.tmp");
  await pipeline(tar.stdout, sha256Transform(diffHash), createGzip({ level: 1 }), sha256Transform(blobHash), createWriteStream(layerTemp));
  await tarExit;
  const layerHex = blobHash.digest("hex");
  await rename(layerTemp, path.join(blobsDir, layerHex));
  const layerSize = (await stat(path.join(blobsDir, layerHex))).size;

  const config = await writeBlob(
    blobsDir,
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: {},
        rootfs: { type: "layers", diff_ids: [`sha256:${diffHash.digest("hex")}`] },
      }),
    ),
  );
  const manifest = await writeBlob(
    blobsDir,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${layerHex}`, size: layerSize }],
      }),
    ),
  );
  await writeFile(path.join(layoutDir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    path.join(layoutDir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          annotations: { "org.opencontainers.image.ref.name": "latest" },
        },
      ],
    }),
  );
}

/** Returns the layout folder, building it first when it is missing. */
export async function ensureLargeLayer(log: (line: string) => void): Promise<string> {
  if (existsSync(LARGE_LAYER_DIR)) return LARGE_LAYER_DIR;
  const building = `${LARGE_LAYER_DIR}.building`;
  await rm(building, { recursive: true, force: true });
  const source = path.join(building, "tree");
  const layout = path.join(building, "layout");
  log(`convert bench: building the large-layer image in ${LARGE_LAYER_DIR} (once, about a minute)`);
  await writeSourceTree(source);
  await writeLayout(source, layout);
  await rename(layout, LARGE_LAYER_DIR);
  await rm(building, { recursive: true, force: true });
  return LARGE_LAYER_DIR;
}
