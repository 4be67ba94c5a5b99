import { describe, expect, it } from "vitest";

import { RegistryError } from "../../src/errors.js";
import { formatReference, manifestSelector, parseReference, registryApiHost } from "../../src/registry/reference.js";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("parseReference", () => {
  it.each([
    ["alpine", "docker.io", "library/alpine", "latest", undefined],
    ["alpine:3.19", "docker.io", "library/alpine", "3.19", undefined],
    ["docker.io/library/debian:bookworm", "docker.io", "library/debian", "bookworm", undefined],
    ["index.docker.io/debian", "docker.io", "library/debian", "latest", undefined],
    ["docker.io/debian", "docker.io", "library/debian", "latest", undefined],
    ["bitnami/redis", "docker.io", "bitnami/redis", "latest", undefined],
    ["localhost/app", "localhost", "app", "latest", undefined],
    ["localhost:5000/repo@" + DIGEST, "localhost:5000", "repo", undefined, DIGEST],
    ["host.example/repo:tag@" + DIGEST, "host.example", "repo", "tag", DIGEST],
    ["127.0.0.1:5000/a/b/c:v1.2_3-x", "127.0.0.1:5000", "a/b/c", "v1.2_3-x", undefined],
    ["[::1]:5000/repo", "[::1]:5000", "repo", "latest", undefined],
    ["ghcr.io/org/my__name.x-y:latest", "ghcr.io", "org/my__name.x-y", "latest", undefined],
  ])("%s", (input, registry, repository, tag, digest) => {
    const reference = parseReference(input);

    expect(reference.registry).toBe(registry);
    expect(reference.repository).toBe(repository);
    expect(reference.tag).toBe(tag);
    expect(reference.digest).toBe(digest);
  });

  it.each([
    ["", "empty"],
    ["Alpine", "repository component"],
    ["alpine:", "tag"],
    ["alpine:-bad", "tag"],
    ["alpine@sha256:1234", "digest"],
    ["alpine@md5:" + "0".repeat(32), "digest"],
    ["host:5000/", "repository name is empty"],
    ["host/a//b", "repository component"],
    ["host/-a", "repository component"],
    [" alpine", "spaces"],
    ["bad_host:5000/x", "registry"],
    ["a:" + "x".repeat(129), "tag"],
  ])("rejects %j", (input, reason) => {
    let error: unknown;
    try {
      parseReference(input);
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe("ERR_REFERENCE_INVALID");
    expect((error as RegistryError).message).toContain(`"${input}"`);
    expect((error as RegistryError).message).toContain(reason);
  });

  it("rejects names over 255 characters", () => {
    expect(() => parseReference(`host.example/${"a".repeat(256)}`)).toThrow(/longer than 255/);
  });
});

describe("reference helpers", () => {
  it("formats the full name", () => {
    expect(formatReference(parseReference("alpine"))).toBe("docker.io/library/alpine:latest");
    expect(formatReference(parseReference(`h.io/r:t@${DIGEST}`))).toBe(`h.io/r:t@${DIGEST}`);
  });

  it("selects the digest over the tag", () => {
    expect(manifestSelector(parseReference(`h.io/r:t@${DIGEST}`))).toBe(DIGEST);
    expect(manifestSelector(parseReference("h.io/r:t"))).toBe("t");
  });

  it("maps Docker Hub to its API host", () => {
    expect(registryApiHost(parseReference("alpine").registry)).toBe("registry-1.docker.io");
    expect(registryApiHost("localhost:5000")).toBe("localhost:5000");
  });
});
