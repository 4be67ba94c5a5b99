// The layerdisk command as a user runs it: create on the demo image the
// README uses, then ls, inspect, verify, rm and prune, with their exit
// statuses and --json output.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { hasImage, testdataDir } from "../image/testdata.js";

const repo = join(import.meta.dirname, "..", "..");
const scratch = mkdtempSync(join(tmpdir(), "layerdisk-cli-"));
const store = join(scratch, "store");
const image = join(scratch, "demo-image");

function layerdisk(...args: string[]) {
  const result = spawnSync(process.execPath, ["--import", "tsx", join(repo, "src", "cli", "main.ts"), ...args], {
    encoding: "utf8",
    cwd: repo,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  const demoBuild = spawnSync(process.execPath, [join(repo, "scripts", "make-demo-image.mjs"), image], { encoding: "utf8" });
  expect(demoBuild.status, demoBuild.stderr).toBe(0);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.skipIf(!existsSync("/bin/busybox"))("layerdisk CLI", () => {
  let disk = "";
  let chain: string[] = [];

  it("create --json prints disk and chain", () => {
    const run = layerdisk("create", "--store", store, "--json", `oci-layout:${image}:latest`);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { disk: string; chain: string[]; fsType: string; imageConfig: { Cmd: string[] } };
    expect(existsSync(result.disk)).toBe(true);
    expect(result.chain).toHaveLength(2);
    expect(result.fsType).toBe("ext4");
    expect(result.imageConfig.Cmd).toEqual(["/bin/sh"]);
    // Progress goes to stderr as plain lines when it is not a terminal.
    expect(run.stderr).toContain("layer 2/2");
    disk = result.disk;
    chain = result.chain;
  });

  it("create again reuses the layers", () => {
    const run = layerdisk("create", "--store", store, `oci-layout:${image}:latest`);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain("cached");
    expect(run.stdout).toContain("disk:");
    for (const file of chain) expect(run.stdout).toContain(file);
  });

  it("ls and inspect list the image", () => {
    const list = JSON.parse(layerdisk("ls", "--store", store, "--json").stdout) as { images: unknown[]; layers: unknown[]; overlays: unknown[] };
    expect(list.images).toHaveLength(1);
    expect(list.layers).toHaveLength(2);
    expect(list.overlays).toHaveLength(2);

    const inspect = layerdisk("inspect", "--store", store, "--json", `oci-layout:${image}:latest`);
    expect(inspect.status, inspect.stderr).toBe(0);
    const [record] = JSON.parse(inspect.stdout) as Array<{ chain: string[] }>;
    expect(record!.chain).toEqual(chain);
  });

  it("verify reports a clean store", () => {
    const run = layerdisk("verify", "--store", store, "--json");
    expect(run.status, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { clean: boolean }).clean).toBe(true);
  });

  it("rm then prune frees layers without overlays", () => {
    expect(layerdisk("rm", "--store", store, `oci-layout:${image}:latest`).status).toBe(0);
    // Live overlays still reference the chain.
    const whileOverlaysLive = JSON.parse(layerdisk("prune", "--store", store, "--json").stdout) as { removedLayers: string[] };
    expect(whileOverlaysLive.removedLayers).toEqual([]);

    for (const overlay of JSON.parse(layerdisk("ls", "--store", store, "--json").stdout).overlays as Array<{ disk: string }>) {
      rmSync(overlay.disk);
    }
    const freed = JSON.parse(layerdisk("prune", "--store", store, "--json").stdout) as { removedLayers: string[] };
    expect(freed.removedLayers).toHaveLength(2);
    expect(existsSync(disk)).toBe(false);
  });

  it("rm deletes an overlay by id", () => {
    const created = JSON.parse(layerdisk("create", "--store", store, "--json", `oci-layout:${image}:latest`).stdout) as {
      disk: string;
      overlayId: string;
    };
    const run = layerdisk("rm", "--store", store, created.overlayId);
    expect(run.status, run.stderr).toBe(0);
    expect(existsSync(created.disk)).toBe(false);
    const list = JSON.parse(layerdisk("ls", "--store", store, "--json").stdout) as { overlays: Array<{ id: string }> };
    expect(list.overlays.map((overlay) => overlay.id)).not.toContain(created.overlayId);
  });

  it("exit statuses for errors", () => {
    const usage = layerdisk("frobnicate");
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain("ERR_USAGE");

    const missing = layerdisk("create", "--store", store, join(scratch, "no-such-image"));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("ERR_IMAGE_NOT_FOUND");

    const json = layerdisk("create", "--store", store, "--json", join(scratch, "no-such-image"));
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: "ERR_IMAGE_NOT_FOUND" } });

    const badSize = layerdisk("create", "--store", store, "--fs-size", "lots", `oci-layout:${image}:latest`);
    expect(badSize.status).toBe(2);
    expect(badSize.stderr).toContain('invalid size "lots"');

    const tooLarge = layerdisk("create", "--store", store, "--fs-size", "16T", `oci-layout:${image}:latest`);
    expect(tooLarge.status).toBe(2);
    expect(tooLarge.stderr).toContain("from 8 MiB to 1 TiB");

    const missingCa = layerdisk("pull", "--store", store, "--ca-file", join(scratch, "no-such-ca.pem"), "127.0.0.1:1/none:latest");
    expect(missingCa.status).toBe(2);
    expect(missingCa.stderr).toContain("cannot read --ca-file");

    const badCluster = layerdisk("create", "--store", store, "--cluster-size", "3K", `oci-layout:${image}:latest`);
    expect(badCluster.status).toBe(2);
    expect(badCluster.stderr).toContain("power of two");
  });
});

describe.skipIf(!hasImage("debian-python"))("layerdisk CLI interrupted", () => {
  it("SIGINT exits 130 and publishes nothing", async () => {
    const interruptedStore = join(scratch, "interrupted");
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(repo, "src", "cli", "main.ts"), "create", "--store", interruptedStore, `oci-layout:${join(testdataDir, "debian-python")}:latest`],
      { cwd: repo, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    let interrupted = false;
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
      // One Ctrl-C: a second one would end the process at once, as usual.
      if (stderr.includes("converting") && !interrupted) {
        interrupted = true;
        child.kill("SIGINT");
      }
    });
    const status = await new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));

    expect(status, `exit status ${status}; stderr:\n${stderr}`).toBe(130);
    const leftovers = readdirSync(join(interruptedStore, "layers"), { recursive: true }).map(String);
    expect(leftovers.filter((name) => name.includes(".tmp-") || name.endsWith(".qcow2"))).toEqual([]);
  });
});
