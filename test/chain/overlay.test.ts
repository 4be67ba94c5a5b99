// Overlays after createChain: reset discards the guest's writes, delete
// removes disk and record, and an aborted createChain publishes nothing.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { createChain } from "../../src/chain/create.js";
import { deleteOverlay, resetOverlay } from "../../src/chain/overlay.js";
import { Qcow2Chain } from "../../src/qcow2/index.js";
import { Store } from "../../src/store/store.js";
import { buildLayout, makeTar } from "../image/builder.js";
import { hasImage, testdataDir } from "../image/testdata.js";
import { qemuImgCheck } from "./oracles.js";

const scratch = mkdtempSync(join(tmpdir(), "layerdisk-overlay-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function smallImage(): Promise<string> {
  return buildLayout({ layers: [{ tar: await makeTar([{ name: "hello", content: "hello\n" }]) }] });
}

async function readSector(disk: string, offset: number): Promise<Buffer> {
  const chain = await Qcow2Chain.open(disk, { allowAnyDir: true });
  try {
    return await chain.read(offset, 512);
  } finally {
    await chain.close();
  }
}

describe("overlays", () => {
  it("reset discards writes and delete removes the disk", async () => {
    const store = await new Store(join(scratch, "store")).open();
    const result = await createChain(`oci-layout:${await smallImage()}`, { store });
    const offset = 64 * 1024 * 1024;
    const pristine = await readSector(result.disk, offset);

    const writable = await Qcow2Chain.open(result.disk, { writable: true, allowAnyDir: true });
    await writable.write(offset, Buffer.alloc(512, 0xee));
    await writable.close();
    expect((await readSector(result.disk, offset)).equals(Buffer.alloc(512, 0xee))).toBe(true);

    await resetOverlay(store, result.overlayId);
    expect((await readSector(result.disk, offset)).equals(pristine)).toBe(true);
    expect(qemuImgCheck(result.disk).status).toBe(0);

    await deleteOverlay(store, result.overlayId);
    expect(existsSync(result.disk)).toBe(false);
    expect(await store.readOverlay(result.overlayId)).toBeUndefined();
    await expect(resetOverlay(store, result.overlayId)).rejects.toMatchObject({ code: "ERR_OVERLAY_NOT_FOUND" });
  });

  it("writes the overlay where the caller asks", async () => {
    const disk = join(scratch, "vm", "root.qcow2");
    rmSync(join(scratch, "vm"), { recursive: true, force: true });
    mkdirSync(join(scratch, "vm"));
    const result = await createChain(`oci-layout:${await smallImage()}`, { store: join(scratch, "store"), disk });

    expect(result.disk).toBe(disk);
    expect(qemuImgCheck(disk).status).toBe(0);
  });
});

describe.skipIf(!hasImage("debian-python"))("cancellation", () => {
  it("abort mid-conversion publishes nothing", async () => {
    const storeRoot = join(scratch, "aborted");
    const controller = new AbortController();
    const conversion = createChain(`oci-layout:${join(testdataDir, "debian-python")}:latest`, {
      store: storeRoot,
      signal: controller.signal,
      onProgress: (event) => {
        if (event.type === "layer" && event.state === "converting") controller.abort();
      },
    });

    await expect(conversion).rejects.toMatchObject({ name: "AbortError" });
    const layerFolders = readdirSync(join(storeRoot, "layers"));
    for (const folder of layerFolders) expect(readdirSync(join(storeRoot, "layers", folder))).toEqual([]);
    expect(readdirSync(join(storeRoot, "images"))).toEqual([]);
    expect(readdirSync(join(storeRoot, "overlays"))).toEqual([]);
  });
});
