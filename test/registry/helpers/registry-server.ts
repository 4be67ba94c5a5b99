/**
 * Runs the CNCF distribution registry (`docker-registry`, Debian package
 * docker-registry) on 127.0.0.1 with a config written here, and fills it
 * with skopeo.
 */

import type { ChildProcess } from "node:child_process";
import { execFile, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export const REGISTRY_BINARY = process.env.LAYERDISK_DOCKER_REGISTRY ?? "/usr/bin/docker-registry";

/** Returns a TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export type RegistryAuth =
  | { kind: "none" }
  | { kind: "token"; realm: string; service: string; issuer: string; rootCertBundle: string }
  | { kind: "htpasswd"; realm: string; path: string };

function authYaml(auth: RegistryAuth): string {
  if (auth.kind === "token") {
    return [
      "auth:",
      "  token:",
      `    realm: ${auth.realm}`,
      `    service: ${auth.service}`,
      `    issuer: ${auth.issuer}`,
      `    rootcertbundle: ${auth.rootCertBundle}`,
    ].join("\n");
  }
  if (auth.kind === "htpasswd") return ["auth:", "  htpasswd:", `    realm: ${auth.realm}`, `    path: ${auth.path}`].join("\n");
  return "";
}

/** Certificate files for a registry that serves HTTPS (`http.tls` in its config). */
export interface RegistryTls {
  certFile: string;
  keyFile: string;
  /** CA that signed `certFile`, trusted by the start-up probe. */
  caFile: string;
}

export interface RunningRegistry {
  host: string;
  port: number;
  output: () => string;
  stop: () => Promise<void>;
}

async function waitUntilServing(port: number, child: ChildProcess, output: () => string, tls?: RegistryTls): Promise<void> {
  const deadline = Date.now() + 15_000;
  const ca = tls === undefined ? undefined : readFileSync(tls.caFile);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const probe = { host: "127.0.0.1", port, path: "/v2/" };
      const onResponse = (response: http.IncomingMessage): void => {
        response.resume();
        resolve(true);
      };
      const request = ca === undefined ? http.get(probe, onResponse) : https.get({ ...probe, ca }, onResponse);
      request.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`docker-registry did not start on port ${port} within 15 s: ${output()}`);
}

/**
 * Starts a registry serving `storage`; `folder` receives its config file.
 * With `tls`, it serves HTTPS only.
 */
export async function startRegistry(folder: string, storage: string, auth: RegistryAuth, name: string, tls?: RegistryTls): Promise<RunningRegistry> {
  const port = await freePort();
  const config = join(folder, `${name}.yml`);
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${storage}`,
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "  secret: layerdisk-test-secret",
      ...(tls === undefined ? [] : ["  tls:", `    certificate: ${tls.certFile}`, `    key: ${tls.keyFile}`]),
      authYaml(auth),
      "",
    ].join("\n"),
  );

  const child = spawn(REGISTRY_BINARY, ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000)));
  child.stderr!.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000)));
  const output = (): string => log;

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await waitUntilServing(port, child, output, tls);
  } catch (error) {
    await stop();
    throw error;
  }
  return { host: `127.0.0.1:${port}`, port, output, stop };
}

/** Copies an image into a registry with skopeo, keeping the source manifest. */
export async function skopeoCopy(source: string, destination: string, extra: string[] = []): Promise<void> {
  await execFileAsync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", ...extra, source, destination], {
    maxBuffer: 16 << 20,
  });
}
