#!/usr/bin/env node
// Builds a small two-layer OCI image layout from this machine's static
// busybox (Debian package busybox-static), for trying layerdisk offline:
//
//   node scripts/make-demo-image.mjs /tmp/demo-image
//   npx layerdisk create oci-layout:/tmp/demo-image:latest
//
// Layer 1 contains busybox, its applet links and /etc basics; layer 2 adds a
// file and removes one from layer 1 with an OCI whiteout.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";

const BUSYBOX = "/bin/busybox";
const APPLETS = ["sh", "ls", "cat", "echo", "mount", "uname", "sleep", "mkdir", "rm", "sync"];
// Fixed times, so the image's digests are the same on every run.
const MTIME = new Date("2026-01-01T00:00:00Z");
// OCI names for Node's process.arch values.
const ARCHITECTURE = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" }[process.arch] ?? process.arch;

const output = process.argv[2];
if (!output) {
  console.error("usage: make-demo-image.mjs OUTPUT_DIR");
  process.exit(2);
}
if (!existsSync(BUSYBOX)) {
  console.error(`${BUSYBOX} not found; install the busybox-static package`);
  process.exit(1);
}

function sha256(data) {
  return createHash("sha256").update(data).digest("hex");
}

async function packTar(entries) {
  const pack = tar.pack();
  const chunks = [];
  pack.on("data", (chunk) => chunks.push(chunk));
  const finished = new Promise((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const { header, body } of entries) {
    pack.entry({ mtime: MTIME, uid: 0, gid: 0, ...header }, body);
  }
  pack.finalize();
  await finished;
  return Buffer.concat(chunks);
}

function writeBlob(data) {
  const digest = sha256(data);
  writeFileSync(join(output, "blobs", "sha256", digest), data);
  return { digest: `sha256:${digest}`, size: data.length };
}

const directory = (name) => ({ header: { name, type: "directory", mode: 0o755 } });
const file = (name, body, mode = 0o644) => ({ header: { name, type: "file", mode }, body });

const baseLayer = await packTar([
  directory("bin"),
  file("bin/busybox", readFileSync(BUSYBOX), 0o755),
  ...APPLETS.map((applet) => ({ header: { name: `bin/${applet}`, type: "symlink", linkname: "busybox", mode: 0o777 } })),
  directory("etc"),
  file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
  file("etc/group", "root:x:0:\n"),
  file("etc/hostname", "demo\n"),
  directory("root"),
  directory("tmp"),
]);
const topLayer = await packTar([
  file("etc/motd", "Booted from a layerdisk chain.\n"),
  file("etc/.wh.hostname", ""),
]);

mkdirSync(join(output, "blobs", "sha256"), { recursive: true });
const layers = [baseLayer, topLayer].map((layer) => ({
  ...writeBlob(gzipSync(layer)),
  diffId: `sha256:${sha256(layer)}`,
}));
const config = writeBlob(
  Buffer.from(
    JSON.stringify({
      architecture: ARCHITECTURE,
      os: "linux",
      config: { Cmd: ["/bin/sh"], Env: ["PATH=/bin"], WorkingDir: "/root" },
      rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
    }),
  ),
);
const manifest = writeBlob(
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: layers.map(({ digest, size }) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest,
        size,
      })),
    }),
  ),
);
writeFileSync(join(output, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
writeFileSync(
  join(output, "index.json"),
  JSON.stringify({
    schemaVersion: 2,
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifest,
        annotations: { "org.opencontainers.image.ref.name": "latest" },
        platform: { architecture: ARCHITECTURE, os: "linux" },
      },
    ],
  }),
);
console.log(`wrote oci-layout:${output}:latest (manifest ${manifest.digest})`);
