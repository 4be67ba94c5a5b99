// A guest boots from a createChain overlay: python3 runs from the ext4 the
// chain holds, writes persist in the overlay across boots, and the layer
// files below it never change.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { bootGuest } from "../../bench/guest/index.js";
import { createChain } from "../../src/chain/create.js";
import { expectPythonRuns } from "../guest/helpers.js";
import { hasImage, testdataDir } from "../image/testdata.js";
import { e2fsck, qemuImgCheck, sha256File } from "./oracles.js";

const scratch = mkdtempSync(join(tmpdir(), "layerdisk-boot-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.skipIf(!hasImage("debian-python"))("guest boot from a chain", () => {
  it("runs python3 and keeps writes in the overlay", async () => {
    const result = await createChain(`oci-layout:${join(testdataDir, "debian-python")}:latest`, { store: join(scratch, "store") });
    const layerHashes = result.chain.map(sha256File);

    const first = await expectPythonRuns({ disk: result.disk });
    console.log(`guest booted with ${first.accel} in ${Math.round(first.bootMs)} ms`);

    const write = await bootGuest({ disk: result.disk, command: "echo persisted > /root/note.txt && sync && echo written" });
    expect(write.stdout).toBe("written\n");
    expect(write.exitCode).toBe(0);

    const read = await bootGuest({ disk: result.disk, command: "cat /root/note.txt" });
    expect(read.stdout).toBe("persisted\n");

    expect(result.chain.map(sha256File)).toEqual(layerHashes);
    expect(qemuImgCheck(result.disk).status).toBe(0);
    expect(e2fsck(result.disk).status).toBe(0);
  });
});
