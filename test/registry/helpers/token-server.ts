/**
 * A token server for the registry's `auth: token` mode, following the
 * Docker registry token authentication spec: it checks basic credentials,
 * and signs an RS256 JWT whose `x5c` header carries a self-signed
 * certificate that the registry trusts through `rootcertbundle`.
 */

import { execFileSync } from "node:child_process";
import { X509Certificate, createPrivateKey, randomBytes, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface TokenServerOptions {
  folder: string;
  service: string;
  issuer: string;
  username: string;
  password: string;
  /** Token lifetime sent as `expires_in`, in seconds. */
  lifetimeS?: number;
}

export interface TokenServer {
  realm: string;
  certFile: string;
  /** Each token request's query `scope` and whether its credentials were valid. */
  requests: Array<{ scope: string | null; service: string | null; authorized: boolean }>;
  stop: () => Promise<void>;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/** Makes a self-signed RSA certificate with openssl; returns the key and certificate paths. */
function makeCertificate(folder: string): { keyFile: string; certFile: string } {
  const keyFile = join(folder, "token.key");
  const certFile = join(folder, "token.crt");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=layerdisk-test-token"],
    { stdio: "ignore" },
  );
  return { keyFile, certFile };
}

/** Parses `repository:NAME:ACTIONS` scopes into the JWT `access` claim, granting what is asked. */
function accessFor(scope: string | null): Array<{ type: string; name: string; actions: string[] }> {
  if (scope === null) return [];
  return scope.split(" ").map((item) => {
    const [type, ...rest] = item.split(":");
    const actions = rest.pop() ?? "";
    return { type: type!, name: rest.join(":"), actions: actions.split(",") };
  });
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const { keyFile, certFile } = makeCertificate(options.folder);
  const key = createPrivateKey(readFileSync(keyFile));
  const certificate = new X509Certificate(readFileSync(certFile));
  const requests: TokenServer["requests"] = [];
  const expected = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString("base64")}`;

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const scope = url.searchParams.get("scope");
    const authorized = request.headers.authorization === expected;
    requests.push({ scope, service: url.searchParams.get("service"), authorized });
    if (!authorized) {
      response.writeHead(401, { "content-type": "application/json" }).end('{"details":"invalid credentials"}');
      return;
    }

    const now = Math.floor(Date.now() / 1000);
    const lifetime = options.lifetimeS ?? 300;
    const header = { typ: "JWT", alg: "RS256", x5c: [certificate.raw.toString("base64")] };
    const claims = {
      iss: options.issuer,
      sub: options.username,
      aud: options.service,
      exp: now + lifetime,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString("hex"),
      access: accessFor(scope),
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(signingInput), key);
    const token = `${signingInput}.${base64url(signature)}`;
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ token, access_token: token, expires_in: lifetime, issued_at: new Date(now * 1000).toISOString() }));
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certFile,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
