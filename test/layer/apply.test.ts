import { Readable } from "node:stream";

import { describe, expect, it } from "vitest";

import { LayerError } from "../../src/errors.js";
import { applyLayer } from "../../src/layer/apply.js";
import { renderListTree } from "../../src/layer/list-tree.js";
import { MemoryTarget } from "../../src/layer/memory-target.js";
import { readTar } from "../../src/tar/reader.js";
import { makeTar, type TarMember } from "../image/builder.js";
import { rawTar, type RawMember } from "../tar/raw-tar.js";

async function apply(target: MemoryTarget, members: TarMember[]): Promise<void> {
  await applyLayer(target, readTar(Readable.from([await makeTar(members)])));
}

async function applyRaw(target: MemoryTarget, members: RawMember[]): Promise<void> {
  await applyLayer(target, readTar(Readable.from([rawTar(members)])));
}

/** Lists paths only, one per line, for short assertions. */
function paths(target: MemoryTarget): string[] {
  return renderListTree(target)
    .trimEnd()
    .split("\n")
    .map((line) => line.split(" ")[0] as string);
}

async function failure(promise: Promise<unknown>): Promise<LayerError> {
  try {
    await promise;
  } catch (error) {
    return error as LayerError;
  }
  throw new Error("expected the layer to be rejected");
}

describe("path resolution", () => {
  it("dot-dot and absolute names stay inside", async () => {
    const target = new MemoryTarget();
    await applyRaw(target, [
      { name: "../../etc/passwd", data: Buffer.from("root") },
      { name: "/abs/file" },
      { name: "./a/../../../b" },
      { name: "x/./y/../z" },
    ]);
    expect(paths(target)).toEqual(["/", "/abs", "/abs/file", "/b", "/etc", "/etc/passwd", "/x", "/x/z"]);
  });

  it("symlinked parents resolve inside the image", async () => {
    const target = new MemoryTarget();
    await apply(target, [
      { name: "escape", type: "symlink", linkname: "../../../../.." },
      { name: "absolute", type: "symlink", linkname: "/etc" },
      { name: "relative", type: "symlink", linkname: "../outside/dir" },
    ]);
    await apply(target, [
      { name: "escape/root-file", content: "1" },
      { name: "absolute/conf", content: "2" },
      { name: "relative/f", content: "3" },
    ]);
    expect(paths(target)).toEqual([
      "/",
      "/absolute",
      "/escape",
      "/etc",
      "/etc/conf",
      "/outside",
      "/outside/dir",
      "/outside/dir/f",
      "/relative",
      "/root-file",
    ]);
    expect(target.lookup("/escape")?.type).toBe("symlink");
  });

  it("symlink loop is rejected", async () => {
    const target = new MemoryTarget();
    await apply(target, [
      { name: "a", type: "symlink", linkname: "b" },
      { name: "b", type: "symlink", linkname: "a" },
    ]);
    const error = await failure(apply(target, [{ name: "a/f" }]));
    expect(error.code).toBe("ERR_LAYER_SYMLINK_LOOP");
    expect(error.path).toBe("a/f");
  });

  it("implicit parents are root-owned 0755", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "p/q/file", uid: 5, mode: 0o600 }]);
    expect(renderListTree(target)).toContain("/p/q type=d mode=0755 uid=0 gid=0\n");
    expect(renderListTree(target)).toContain("/p/q/file type=f mode=0600 uid=5 gid=0");
  });

  it("file under a file is rejected", async () => {
    const target = new MemoryTarget();
    const error = await failure(apply(target, [{ name: "f" }, { name: "f/g" }]));
    expect(error.code).toBe("ERR_LAYER_NOT_A_DIRECTORY");
  });
});

describe("whiteouts", () => {
  it("whiteout removes lower file and directory", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "d/", type: "directory" }, { name: "d/a" }, { name: "d/b" }, { name: "e/x" }]);
    await apply(target, [{ name: "d/.wh.a" }, { name: ".wh.e" }]);
    expect(paths(target)).toEqual(["/", "/d", "/d/b"]);
  });

  it("whiteout keeps same-layer entry", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "a", content: "lower" }]);
    await apply(target, [{ name: "a", content: "upper" }, { name: ".wh.a" }]);
    expect(target.lookup("/a")?.content?.toString()).toBe("upper");
  });

  it("whiteout before recreating a directory", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "d/old" }]);
    await apply(target, [{ name: ".wh.d" }, { name: "d/", type: "directory", mode: 0o700 }, { name: "d/new" }]);
    expect(paths(target)).toEqual(["/", "/d", "/d/new"]);
  });

  it("opaque marker before own entries", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "o/lower1" }, { name: "o/sub/lower2" }]);
    await apply(target, [{ name: "o/.wh..wh..opq" }, { name: "o/new" }]);
    expect(paths(target)).toEqual(["/", "/o", "/o/new"]);
  });

  it("opaque marker after own entries", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "o/lower1" }, { name: "o/sub/lower2" }, { name: "o/sub/kept-dir-lower" }]);
    await apply(target, [{ name: "o/", type: "directory" }, { name: "o/new" }, { name: "o/sub/mine" }, { name: "o/.wh..wh..opq" }]);
    expect(paths(target)).toEqual(["/", "/o", "/o/new", "/o/sub", "/o/sub/mine"]);
  });

  it("whiteout of absent path is ignored", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "missing/.wh.x" }, { name: ".wh.y" }]);
    expect(paths(target)).toEqual(["/"]);
  });
});

describe("entries", () => {
  it("later entry replaces earlier", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "f", content: "one" }, { name: "f", content: "two" }, { name: "d/child" }, { name: "d", content: "file now" }]);
    expect(target.lookup("/f")?.content?.toString()).toBe("two");
    expect(target.lookup("/d")?.type).toBe("file");
  });

  it("hardlink to lower layer file", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "bin/busybox", content: "elf", mode: 0o755 }]);
    await apply(target, [{ name: "bin/sh", type: "link", linkname: "bin/busybox" }]);
    const listing = renderListTree(target);
    expect(listing).toContain("/bin/sh type=f mode=0755 uid=0 gid=0 size=3");
    expect(listing).toContain("nlink=2 linkgroup=/bin/busybox");
  });

  it("hardlink to missing file is rejected", async () => {
    const target = new MemoryTarget();
    const error = await failure(apply(target, [{ name: "a", type: "link", linkname: "nope" }]));
    expect(error.code).toBe("ERR_LAYER_LINK_TARGET_MISSING");
    expect(error.path).toBe("a");
  });

  it("directory mtime survives its children", async () => {
    const target = new MemoryTarget();
    const mtime = new Date(86_400_000);
    await apply(target, [{ name: "d/", type: "directory", mtime }, { name: "d/f", mtime: new Date(1_700_000_000_000) }, { name: "d/sub/g" }]);
    expect(target.lookup("/d")?.mtime).toEqual({ sec: 86_400, nsec: 0 });
    expect(renderListTree(target, { mtime: true })).toContain("/d type=d mode=0755 uid=0 gid=0 mtime=86400.000000000\n");
  });

  it("directory entry over directory keeps children", async () => {
    const target = new MemoryTarget();
    await apply(target, [{ name: "d/f" }]);
    await apply(target, [{ name: "d/", type: "directory", mode: 0o711, uid: 7 }]);
    expect(paths(target)).toEqual(["/", "/d", "/d/f"]);
    expect(target.lstat("/d")).toMatchObject({ mode: 0o711, uid: 7 });
  });

  it("devices, fifos and symlink mode", async () => {
    const target = new MemoryTarget();
    await apply(target, [
      { name: "dev/null", type: "character-device", mode: 0o666, devmajor: 1, devminor: 3 },
      { name: "dev/fifo", type: "fifo" },
      { name: "l", type: "symlink", linkname: "target", mode: 0o644 },
    ]);
    const listing = renderListTree(target);
    expect(listing).toContain("/dev/null type=c mode=0666 uid=0 gid=0 rdev=1:3");
    expect(listing).toContain("/dev/fifo type=p mode=0644");
    expect(listing).toContain("/l type=l mode=0777 uid=0 gid=0 target=target");
  });
});
