import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

import { execTool } from "../guest/exec.js";

/** Root of the generated depth images; each one is an OCI layout that stays until deleted. */
export function depthImagesDir(): string {
  return process.env.LAYERDISK_BENCH_IMAGES ?? "/var/cache/layerdisk-bench/depth-images";
}

/** Bumped when the layout of the generated images changes, so old caches are not reused. */
const FORMAT_VERSION = "1";

async function sha256File(file: string): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/** Writes `content` as a blob of the layout and returns its descriptor fields. */
async function writeBlob(layout: string, content: string): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash("sha256").update(content).digest("hex")}`;
  await writeFile(path.join(layout, "blobs/sha256", digest.slice("sha256:".length)), content);
  return { digest, size: Buffer.byteLength(content) };
}

/** Lists every path under `root` relative to it, as `./...`, with its type letter from find(1). */
async function listTree(root: string): Promise<Array<{ path: string; type: string }>> {
  const { stdout } = await execTool("find", [".", "-mindepth", "1", "-printf", "%y %p\\0"], { cwd: root });
  return stdout
    .split("\0")
    .filter((line) => line !== "")
    .map((line) => ({ type: line.slice(0, 1), path: line.slice(2) }));
}

function ancestors(entry: string): string[] {
  const parents: string[] = [];
  for (let parent = path.posix.dirname(entry); parent !== "." && parent !== "/"; parent = path.posix.dirname(parent)) parents.push(parent);
  return parents;
}

/**
 * Splits the tree into `depth` layer lists. Every non-directory entry goes
 * to layer `i mod depth` in sorted path order, so file data is spread over
 * all layers and a read can land in any of them. Each list also names the
 * parent directories of its entries, and the bottom list names every
 * directory, so empty directories exist too.
 */
function splitTree(entries: ReadonlyArray<{ path: string; type: string }>, depth: number): string[][] {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const layers = Array.from({ length: depth }, () => new Set<string>());
  let index = 0;
  for (const entry of sorted) {
    if (entry.type === "d") {
      layers[0]!.add(entry.path);
      continue;
    }
    const layer = layers[index % depth]!;
    for (const parent of ancestors(entry.path)) layer.add(parent);
    layer.add(entry.path);
    index += 1;
  }
  return layers.map((layer) => [...layer].sort());
}

/**
 * Returns an OCI layout (tag `latest`) of `rootfs` split into `depth`
 * uncompressed tar layers, building it with GNU tar on the first call.
 * Later calls reuse the layout while its directory exists.
 */
export async function depthImage(rootfs: string, depth: number): Promise<string> {
  const layout = path.join(depthImagesDir(), `${path.basename(rootfs, ".rootfs")}-v${FORMAT_VERSION}-depth-${depth}`);
  if (existsSync(path.join(layout, "index.json"))) return layout;

  const temporary = `${layout}.tmp-${process.pid}`;
  await rm(temporary, { recursive: true, force: true });
  await mkdir(path.join(temporary, "blobs/sha256"), { recursive: true });
  try {
    const lists = splitTree(await listTree(rootfs), depth);
    const layers: Array<{ digest: string; size: number }> = [];
    for (const [index, list] of lists.entries()) {
      const listFile = path.join(temporary, `layer-${index}.list`);
      const tarFile = path.join(temporary, `layer-${index}.tar`);
      await writeFile(listFile, list.map((entry) => `${entry}\0`).join(""));
      await execTool("tar", [
        "--create", "--file", tarFile, "--directory", rootfs,
        "--no-recursion", "--null", "--files-from", listFile,
        "--numeric-owner", "--xattrs", "--xattrs-include=*", "--format=pax",
      ]);
      const blob = await sha256File(tarFile);
      await rename(tarFile, path.join(temporary, "blobs/sha256", blob.digest.slice("sha256:".length)));
      await rm(listFile);
      layers.push(blob);
    }

    const diffIds = layers.map((layer) => layer.digest);
    const config = await writeBlob(temporary, JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: diffIds } }));
    const manifest = await writeBlob(
      temporary,
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: layers.map((layer) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer })),
      }),
    );
    await writeFile(
      path.join(temporary, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": "latest" } }],
      }),
    );
    await writeFile(path.join(temporary, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await rename(temporary, layout);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
  return layout;
}
