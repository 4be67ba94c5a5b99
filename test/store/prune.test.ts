import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { conversionParameters, parametersId } from "../../src/store/parameters.js";
import { prune } from "../../src/store/prune.js";
import { Store } from "../../src/store/store.js";

const parameters = conversionParameters();
const params = parametersId(parameters);

function digest(text: string): string {
  return `sha256:${createHash("sha256").update(text).digest("hex")}`;
}

let root: string;
let store: Store;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), "layerdisk-prune-"));
  store = await new Store(join(root, "store")).open();
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Writes a chain of fake layer files with records and returns their chain IDs. */
async function addChain(names: string[]): Promise<string[]> {
  const chainIds: string[] = [];
  let parent: string | null = null;
  mkdirSync(store.layerFolder(params), { recursive: true });
  for (const name of names) {
    const chainId = digest(`chain-${name}`);
    writeFileSync(store.layerFile(params, chainId), `layer ${name}`);
    await store.writeLayerRecord({
      chainId,
      diffId: digest(`diff-${name}`),
      parentChainId: parent,
      parametersId: params,
      parameters,
      fileBytes: 7,
      createdAt: "2026-01-01T00:00:00Z",
    });
    chainIds.push(chainId);
    parent = chainId;
  }
  return chainIds;
}

describe("prune", () => {
  it("keeps layers of images and live overlays", async () => {
    const imageChain = await addChain(["a", "b", "c"]);
    const overlayChain = await addChain(["d", "e"]);
    const orphan = await addChain(["f"]);
    await store.writeImage({
      reference: "test:1",
      platform: "linux/amd64",
      manifestDigest: digest("manifest"),
      configDigest: digest("config"),
      layerDigests: [],
      parametersId: params,
      chainIds: imageChain,
      config: {},
      createdAt: "2026-01-01T00:00:00Z",
    });
    const liveDisk = join(root, "live.qcow2");
    writeFileSync(liveDisk, "");
    for (const [id, disk] of [
      ["live", liveDisk],
      ["gone", join(root, "gone.qcow2")],
    ] as const) {
      await store.writeOverlay({
        id,
        disk,
        reference: "test:2",
        parametersId: params,
        topChainId: overlayChain.at(-1)!,
        createdAt: "2026-01-01T00:00:00Z",
      });
    }
    writeFileSync(store.blobFile(digest("manifest")), "{}");
    writeFileSync(store.blobFile(digest("unused")), "{}");
    writeFileSync(join(store.layerFolder(params), ".tmp-crashed.qcow2-1-abcd"), "partial");

    const result = await prune(store);

    expect(result.removedLayers).toEqual(orphan);
    expect(result.removedOverlayRecords).toEqual(["gone"]);
    expect(result.removedBlobs).toEqual([digest("unused")]);
    expect(result.removedTemporaryFiles).toHaveLength(1);
    for (const chainId of [...imageChain, ...overlayChain]) {
      expect(existsSync(store.layerFile(params, chainId))).toBe(true);
    }
    expect(existsSync(store.blobFile(digest("manifest")))).toBe(true);

    rmSync(liveDisk);
    const second = await prune(store);
    expect(second.removedLayers.sort()).toEqual([...overlayChain].sort());
    expect(second.removedOverlayRecords).toEqual(["live"]);
  });

  it("rejects a store with another layout version", async () => {
    writeFileSync(join(store.root, "VERSION"), "99\n");
    await expect(new Store(store.root).open()).rejects.toMatchObject({ code: "ERR_STORE_VERSION" });
  });
});
