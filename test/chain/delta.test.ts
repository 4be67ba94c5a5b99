// Layer deltas measured in the qcow2 file itself with `qemu-img map`: a
// layer that only changes metadata allocates a handful of data clusters,
// and the same layers always give the same bytes.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { createChain } from "../../src/chain/create.js";
import { buildLayout, makeTar } from "../image/builder.js";
import { e2fsck, listChain, sha256File } from "./oracles.js";

const scratch = mkdtempSync(join(tmpdir(), "layerdisk-delta-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface MapEntry {
  start: number;
  length: number;
  depth: number;
  data: boolean;
  zero: boolean;
}

/** Counts the guest clusters whose data the top file itself holds. */
function dataClustersInTop(file: string, clusterSize: number): number {
  const entries = JSON.parse(execFileSync("qemu-img", ["map", "--output=json", "-f", "qcow2", file], { encoding: "utf8" })) as MapEntry[];
  return entries
    .filter((entry) => entry.depth === 0 && entry.data)
    .reduce((sum, entry) => sum + Math.ceil(entry.length / clusterSize), 0);
}

async function baseLayer(): Promise<Buffer> {
  const members = [{ name: "srv/", type: "directory" as const, mode: 0o755 }];
  for (let index = 0; index < 200; index++) {
    members.push({ name: `srv/file-${index}`, content: `content ${index}\n`.repeat(50) } as never);
  }
  return makeTar(members);
}

describe("layer deltas", () => {
  it("mode-only layer adds at most 3 clusters", async () => {
    const clusterSize = 64 * 1024;
    const modeOnly = await makeTar([{ name: "srv/", type: "directory", mode: 0o700 }]);
    const layout = buildLayout({ layers: [{ tar: await baseLayer() }, { tar: modeOnly }] });

    const result = await createChain(`oci-layout:${layout}`, { store: join(scratch, "store"), clusterSize });
    const clusters = dataClustersInTop(result.chain[1]!, clusterSize);
    console.log(`mode-only layer holds ${clusters} data clusters of ${clusterSize} bytes`);

    expect(clusters).toBeLessThanOrEqual(3);
    expect(listChain(result.disk)).toContain("/srv type=d mode=0700");
    expect(e2fsck(result.chain[1]!).status).toBe(0);
  });

  it("same layers give byte-identical files", async () => {
    const layout = buildLayout({
      layers: [{ tar: await baseLayer() }, { tar: await makeTar([{ name: "srv/file-7", content: "changed\n" }]) }],
    });
    const first = await createChain(`oci-layout:${layout}`, { store: join(scratch, "first") });
    const second = await createChain(`oci-layout:${layout}`, { store: join(scratch, "second") });

    expect(second.chain.map(sha256File)).toEqual(first.chain.map(sha256File));
  });
});
