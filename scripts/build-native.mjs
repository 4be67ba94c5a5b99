#!/usr/bin/env node
// Builds the Rust core (native/) into native/layerdisk.node.
//
// The crate uses the standard library only, so a plain `cargo build` is all
// it takes: a Node addon on Linux is a shared library whose Node-API symbols
// are resolved when Node loads it.

import { spawnSync } from "node:child_process";
import { copyFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const crate = join(root, "native");
const profile = process.env.LAYERDISK_NATIVE_PROFILE ?? "release";

const cargo = spawnSync(
  "cargo",
  ["build", "--manifest-path", join(crate, "Cargo.toml"), ...(profile === "release" ? ["--release"] : [])],
  { stdio: "inherit" },
);
if (cargo.error) {
  console.error(`layerdisk: could not run cargo (${cargo.error.message}); install Rust 1.89 or later and retry.`);
  process.exit(1);
}
if (cargo.status !== 0) {
  process.exit(cargo.status ?? 1);
}

const directory = profile === "release" ? "release" : "debug";
const library = join(crate, "target", directory, "liblayerdisk_native.so");
const addon = join(crate, "layerdisk.node");

// Copy then rename, so a running process never loads a half-copied addon.
copyFileSync(library, `${addon}.tmp`);
renameSync(`${addon}.tmp`, addon);
