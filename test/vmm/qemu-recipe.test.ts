// The QEMU recipe createChain returns must boot: the guest gets exactly the
// recipe's -blockdev and -device arguments and runs python3 from the chain.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { bootGuest } from "../../bench/guest/index.js";
import { createChain } from "../../src/chain/create.js";
import { hasImage, testdataDir } from "../image/testdata.js";
import { PYTHON_SMOKE_COMMAND } from "../guest/helpers.js";

const scratch = mkdtempSync(join(tmpdir(), "layerdisk-qemu-recipe-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.skipIf(!hasImage("debian-python"))("QEMU recipe", () => {
  it("boots python3 from a merged chain", async () => {
    // maxDepth 3 keeps the base layer, merges the two above it, and adds the
    // overlay, so the boot also reads through a merged file.
    const result = await createChain(`oci-layout:${join(testdataDir, "debian-python")}:latest`, {
      store: join(scratch, "store"),
      fsSize: 2 * 1024 ** 3,
      maxDepth: 3,
    });
    expect(result.chain).toHaveLength(2);

    const boot = await bootGuest({ diskArgs: result.vmm.qemu.args, command: PYTHON_SMOKE_COMMAND, accel: "tcg", timeoutMs: 150_000 });

    expect(boot.stderr).toBe("");
    expect(boot.stdout).toBe("1\n");
    expect(boot.exitCode).toBe(0);
  }, 240_000);
});
