import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { applyImageLayer } from "../../src/image/layer-stream.js";
import { resolveImage, type ResolveImageOptions } from "../../src/image/resolve.js";
import type { ResolvedImage } from "../../src/image/types.js";
import { renderListTree } from "../../src/layer/list-tree.js";
import { MemoryTarget } from "../../src/layer/memory-target.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Images built by make-images; `LAYERDISK_TESTDATA` overrides the default location. */
export const testdataDir = process.env.LAYERDISK_TESTDATA ?? "/var/cache/layerdisk-testdata";

/** The shared test data folder beside the clone, with list-tree and real image fixtures. */
export const sharedTestdataDir = [join(repoRoot, "../shared/testdata"), "/work/shared/testdata"].find((d) => existsSync(d)) ?? join(repoRoot, "../shared/testdata");

export const listTreeScript = join(sharedTestdataDir, "list-tree");
export const fixturesDir = join(sharedTestdataDir, "fixtures");

/** Generated files (archives, reference listings) live outside the repository. */
export const cacheDir = process.env.LAYERDISK_TEST_CACHE ?? "/tmp/layerdisk-test-cache";

/** Tells whether make-images finished `name`. */
export function hasImage(name: string): boolean {
  return existsSync(join(testdataDir, `${name}.stamp`));
}

export function hasTool(tool: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Resolves an image, applies every layer to a fresh in-memory target and returns both. */
export async function unpack(reference: string, options: ResolveImageOptions = {}): Promise<{ image: ResolvedImage; target: MemoryTarget }> {
  const image = await resolveImage(reference, options);
  const target = new MemoryTarget();
  for (const layer of image.layers) await applyImageLayer(layer, target);
  return { image, target };
}

export async function listImage(reference: string, options: ResolveImageOptions & { mtime?: boolean } = {}): Promise<string> {
  const { target } = await unpack(reference, options);
  return renderListTree(target, { mtime: options.mtime === true });
}

/** Runs `list-tree` on a directory. */
export function listTree(root: string, mtime = false): string {
  const args = mtime ? [listTreeScript, "--mtime", root] : [listTreeScript, root];
  return execFileSync("python3", args, { maxBuffer: 1 << 30, encoding: "utf8" }).toString();
}

/** Returns a cached file, building it with `build(temporaryPath)` on first use. */
export function cached(name: string, build: (path: string) => void): string {
  const path = join(cacheDir, name);
  if (existsSync(path)) return path;
  mkdirSync(cacheDir, { recursive: true });
  const temporary = `${path}.partial-${process.pid}`;
  rmSync(temporary, { recursive: true, force: true });
  build(temporary);
  renameSync(temporary, path);
  return path;
}

/** Packs an OCI layout directory into an oci-archive tar (cached). */
export function ociArchiveOf(name: string): string {
  return cached(`${name}.oci.tar`, (path) => {
    execFileSync("tar", ["-cf", path, "-C", join(testdataDir, name), "."]);
  });
}

/**
 * Builds the reference listing of a fixture: skopeo copies it into an OCI
 * layout (gzip layers, as umoci 0.4 cannot read zstd), umoci unpacks that,
 * and list-tree lists the root filesystem.
 */
export function fixtureReference(fixture: string, transport: string, extraSkopeoArgs: string[] = []): string {
  const listing = cached(`${fixture}.expected.txt`, (path) => {
    const work = `${path}.work`;
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    let source = join(fixturesDir, fixture);
    if (fixture.endsWith(".gz")) {
      // skopeo 1.x reads docker-archive tars only uncompressed.
      const plain = join(work, "plain.tar");
      writeFileSync(plain, execFileSync("gzip", ["-dc", source], { maxBuffer: 1 << 30 }));
      source = plain;
    }
    const layout = join(work, "oci");
    execFileSync("skopeo", ["copy", "-q", ...extraSkopeoArgs, "--dest-compress-format", "gzip", `${transport}:${source}`, `oci:${layout}:ref`]);
    execFileSync("umoci", ["unpack", "--image", `${layout}:ref`, join(work, "bundle")], { stdio: "ignore" });
    writeFileSync(path, listTree(join(work, "bundle", "rootfs")), "utf8");
    rmSync(work, { recursive: true, force: true });
  });
  return readFileSync(listing, "utf8");
}
