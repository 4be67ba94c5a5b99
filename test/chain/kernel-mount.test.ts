// The host kernel mounts a chain read-write through QEMU's own qcow2 code
// (qemu-storage-daemon's FUSE export and a loop device), writes and
// unmounts cleanly, and after the export is killed mid-write, journal
// replay at the next mount leaves e2fsck -fn clean.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";

import { createChain } from "../../src/chain/create.js";
import { buildLayout, makeTar } from "../image/builder.js";
import { e2fsck, flattenToRaw, qemuImgCheck } from "./oracles.js";

const scratch = mkdtempSync(join(tmpdir(), "layerdisk-kernel-"));
const exportFile = join(scratch, "export.raw");
const mountpoint = join(scratch, "mnt");

/** Status of `qemu-img check` when it finds only leaked clusters, which a killed writer may leave. */
const QEMU_IMG_CHECK_LEAKS_ONLY = 3;

function startExport(disk: string): ChildProcess {
  writeFileSync(exportFile, "");
  return spawn(
    "qemu-storage-daemon",
    [
      "--blockdev",
      `driver=file,node-name=file0,filename=${disk}`,
      "--blockdev",
      "driver=qcow2,node-name=disk0,file=file0",
      "--export",
      `type=fuse,id=export0,node-name=disk0,mountpoint=${exportFile},writable=on`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
}

/** Waits until the FUSE export shows the disk's size, meaning it is ready. */
async function waitForExport(size: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      if (Number(execFileSync("stat", ["-c", "%s", exportFile], { encoding: "utf8" })) === size) return;
    } catch {
      // The export is not mounted yet.
    }
    await sleep(100);
  }
  throw new Error(`qemu-storage-daemon did not export ${exportFile}`);
}

async function stopExport(daemon: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((resolve) => daemon.once("exit", resolve));
  daemon.kill(signal);
  await exited;
  // A killed daemon leaves its FUSE mount behind.
  execFileSync("sh", ["-c", `umount -l ${exportFile} 2>/dev/null || true`]);
}

/** Lists the ext4 feature flags of the filesystem in the chain under `disk`. */
function filesystemFeatures(disk: string): string {
  const raw = flattenToRaw(disk, scratch);
  try {
    const header = execFileSync("dumpe2fs", ["-h", raw], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return header.split("\n").find((line) => line.startsWith("Filesystem features:")) ?? "";
  } finally {
    rmSync(raw, { force: true });
  }
}

afterAll(() => {
  execFileSync("sh", ["-c", `umount -l ${mountpoint} 2>/dev/null; umount -l ${exportFile} 2>/dev/null; true`]);
  rmSync(scratch, { recursive: true, force: true });
});

describe("kernel mount through qemu-storage-daemon", () => {
  it("writes, crashes and replays cleanly", async () => {
    const layout = buildLayout({
      layers: [{ tar: await makeTar([{ name: "etc/", type: "directory" }, { name: "etc/hostname", content: "chain\n" }]) }],
    });
    const fsSize = 1024 ** 3;
    const result = await createChain(`oci-layout:${layout}`, { store: join(scratch, "store"), fsSize });
    mkdirSync(mountpoint);

    // A clean read-write session.
    let daemon = startExport(result.disk);
    await waitForExport(fsSize);
    execFileSync("mount", ["-o", "loop", exportFile, mountpoint]);
    expect(readFileSync(join(mountpoint, "etc", "hostname"), "utf8")).toBe("chain\n");
    writeFileSync(join(mountpoint, "etc", "written-by-kernel"), "kernel\n");
    execFileSync("umount", [mountpoint]);
    await stopExport(daemon, "SIGTERM");
    expect(qemuImgCheck(result.disk).status).toBe(0);
    expect(e2fsck(result.disk).status).toBe(0);

    // A writer that is cut off: the export dies while files are being written.
    daemon = startExport(result.disk);
    await waitForExport(fsSize);
    execFileSync("mount", ["-o", "loop", exportFile, mountpoint]);
    const writer = spawn("sh", ["-c", `i=0; while true; do i=$((i+1)); head -c 65536 /dev/urandom > ${mountpoint}/f$i; sync; done`], {
      stdio: "ignore",
    });
    await sleep(1500);
    await stopExport(daemon, "SIGKILL");
    writer.kill("SIGKILL");
    execFileSync("sh", ["-c", `umount -l ${mountpoint} 2>/dev/null || true`]);

    const afterCrash = qemuImgCheck(result.disk);
    expect([0, QEMU_IMG_CHECK_LEAKS_ONLY], afterCrash.output).toContain(afterCrash.status);
    expect(filesystemFeatures(result.disk)).toContain("needs_recovery");

    // The next mount replays the journal into the overlay.
    daemon = startExport(result.disk);
    await waitForExport(fsSize);
    execFileSync("mount", ["-o", "loop", exportFile, mountpoint]);
    expect(readFileSync(join(mountpoint, "etc", "written-by-kernel"), "utf8")).toBe("kernel\n");
    execFileSync("umount", [mountpoint]);
    await stopExport(daemon, "SIGTERM");

    const fsck = e2fsck(result.disk);
    expect(fsck.status, fsck.output).toBe(0);
    expect(existsSync(join(mountpoint, "etc"))).toBe(false);
  });
});
