/**
 * A test CA and a server certificate it signs, made with openssl, for
 * registries that serve HTTPS on 127.0.0.1.
 */

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCertificates {
  caCertFile: string;
  /** Server certificate for `IP:127.0.0.1`, signed by the CA. */
  serverCertFile: string;
  serverKeyFile: string;
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Writes a P-256 CA and a server certificate with SAN `IP:127.0.0.1`, valid for two days, into `folder`. */
export function makeTestCertificates(folder: string, name: string): TestCertificates {
  const caKeyFile = join(folder, `${name}-ca.key`);
  const caCertFile = join(folder, `${name}-ca.crt`);
  const serverKeyFile = join(folder, `${name}-server.key`);
  const requestFile = join(folder, `${name}-server.csr`);
  const serverCertFile = join(folder, `${name}-server.crt`);
  const extensionsFile = join(folder, `${name}-server.ext`);
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

  openssl([
    "req", "-x509", ...ecKey, "-keyout", caKeyFile, "-out", caCertFile, "-days", "2",
    "-subj", `/CN=layerdisk test CA ${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  openssl(["req", "-new", ...ecKey, "-keyout", serverKeyFile, "-out", requestFile, "-subj", "/CN=127.0.0.1"]);
  writeFileSync(
    extensionsFile,
    ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth", "subjectAltName=IP:127.0.0.1", ""].join("\n"),
  );
  openssl([
    "x509", "-req", "-in", requestFile, "-CA", caCertFile, "-CAkey", caKeyFile, "-CAcreateserial",
    "-out", serverCertFile, "-days", "2", "-extfile", extensionsFile,
  ]);
  return { caCertFile, serverCertFile, serverKeyFile };
}
