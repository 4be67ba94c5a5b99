import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { RegistryClient } from "../../src/registry/client.js";
import { FakeRegistry } from "./helpers/fake-registry.js";

/** A token server that hands out numbered opaque tokens, as Docker Hub does for anonymous pulls. */
let tokenServer: http.Server;
let tokenRequests: Array<{
  scope: string | null;
  service: string | null;
  authorization: string | undefined;
  refreshToken?: string | null;
  grantType?: string | null;
}>;
let tokenLifetimeS = 300;
const registry = new FakeRegistry();

function realm(): string {
  return `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
}

beforeAll(async () => {
  tokenServer = http.createServer((request, response) => {
    const url = new URL(request.url!, "http://x");
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      // An OAuth2 refresh-token request sends its parameters as a form body.
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      const parameters = request.method === "POST" ? form : url.searchParams;
      tokenRequests.push({
        scope: parameters.get("scope"),
        service: parameters.get("service"),
        authorization: request.headers.authorization,
        ...(request.method === "POST" ? { refreshToken: form.get("refresh_token"), grantType: form.get("grant_type") } : {}),
      });
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ token: `t${tokenRequests.length}`, expires_in: tokenLifetimeS }));
    });
  });
  await new Promise<void>((resolve) => tokenServer.listen(0, "127.0.0.1", resolve));
  await registry.start();
  registry.addImage("library/alpine", "latest", [Buffer.from("layer")]);
  registry.addImage("library/debian", "latest", [Buffer.from("layer")]);
});
afterAll(async () => {
  await registry.stop();
  await new Promise<void>((resolve) => tokenServer.close(() => resolve()));
});
beforeEach(() => {
  tokenRequests = [];
  tokenLifetimeS = 300;
  registry.requests.length = 0;
  // Requires a bearer token whose scope names the repository, like Docker Hub.
  registry.hook = (request, response, path) => {
    const repository = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(path)?.[1];
    if (request.headers.authorization?.startsWith("Bearer t")) return false;
    const scope = repository === undefined ? "" : `,scope="repository:${repository}:pull"`;
    response.writeHead(401, { "www-authenticate": `Bearer realm="${realm()}",service="registry.docker.io"${scope}` }).end();
    return true;
  };
});

async function get(client: RegistryClient, repository: string): Promise<number> {
  const response = await client.request({
    path: `/v2/${repository}/manifests/latest`,
    scope: `repository:${repository}:pull`,
    context: { reference: repository, object: "manifest latest" },
  });
  response.resume();
  return response.statusCode ?? 0;
}

describe("RegistryClient bearer tokens", () => {
  it("fetches one anonymous token per scope", async () => {
    const client = new RegistryClient(registry.host, { dockerConfig: false });

    expect(await get(client, "library/alpine")).toBe(200);
    expect(await get(client, "library/alpine")).toBe(200);
    expect(await get(client, "library/debian")).toBe(200);
    client.close();

    expect(tokenRequests).toEqual([
      { scope: "repository:library/alpine:pull", service: "registry.docker.io", authorization: undefined },
      { scope: "repository:library/debian:pull", service: "registry.docker.io", authorization: undefined },
    ]);
    // One probe without a token, then every request carries one.
    expect(registry.requests).toHaveLength(4);
  });

  it("refetches an expired token", async () => {
    tokenLifetimeS = 11; // 10 s of the lifetime are kept as a safety margin
    const client = new RegistryClient(registry.host, { dockerConfig: false });

    await get(client, "library/alpine");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await get(client, "library/alpine");
    client.close();

    expect(tokenRequests).toHaveLength(2);
  });

  it("sends basic credentials to the token server", async () => {
    const client = new RegistryClient(registry.host, { credentials: { username: "u", password: "p" } });

    await get(client, "library/alpine");
    client.close();

    expect(tokenRequests[0]!.authorization).toBe(`Basic ${Buffer.from("u:p").toString("base64")}`);
  });

  it("posts an identity token", async () => {
    const client = new RegistryClient(registry.host, { credentials: { identityToken: "refresh-1" } });

    expect(await get(client, "library/alpine")).toBe(200);
    client.close();

    expect(tokenRequests).toEqual([
      {
        scope: "repository:library/alpine:pull",
        service: "registry.docker.io",
        authorization: undefined,
        refreshToken: "refresh-1",
        grantType: "refresh_token",
      },
    ]);
  });
});

describe("RegistryClient transport choice", () => {
  it("uses HTTPS for remote registries", () => {
    expect(new RegistryClient("docker.io").baseUrl.href).toBe("https://registry-1.docker.io/");
    expect(new RegistryClient("registry.internal:5000").baseUrl.protocol).toBe("https:");
  });

  it("uses HTTP for loopback and insecure registries", () => {
    expect(new RegistryClient("localhost:5000").baseUrl.protocol).toBe("http:");
    expect(new RegistryClient("127.0.0.1:5000").baseUrl.protocol).toBe("http:");
    expect(new RegistryClient("registry.internal:5000", { insecureRegistries: ["registry.internal:5000"] }).baseUrl.protocol).toBe("http:");
  });

  it("uses HTTPS for httpsRegistries on loopback", () => {
    const client = new RegistryClient("127.0.0.1:5000", { httpsRegistries: ["127.0.0.1:5000"] });

    expect(client.baseUrl.href).toBe("https://127.0.0.1:5000/");
    expect(client.allowsPlainHttp("127.0.0.1:5000")).toBe(false);
    expect(client.allowsPlainHttp("127.0.0.1:5001")).toBe(true);
    expect(new RegistryClient("localhost:5000", { httpsRegistries: ["127.0.0.1:5000"] }).baseUrl.protocol).toBe("http:");
    client.close();
  });

  it("rejects a host in both lists", () => {
    const create = (): RegistryClient =>
      new RegistryClient("127.0.0.1:5000", { httpsRegistries: ["127.0.0.1:5000"], insecureRegistries: ["127.0.0.1:5000"] });

    expect(create).toThrow(expect.objectContaining({ code: "ERR_REGISTRY_OPTIONS_INVALID" }));
    expect(create).toThrow(/127\.0\.0\.1:5000 is listed in both insecureRegistries and httpsRegistries/);
  });
});
