/**
 * Image references in the form Docker accepts: `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`.
 *
 * The grammar follows the distribution project's reference package. The
 * first path component names a registry host only if it contains `.` or `:`
 * or is `localhost`. Any other reference names a Docker Hub repository.
 */

import { RegistryError } from "../errors.js";

/** Registry name that references use for Docker Hub. */
export const DOCKER_HUB_REGISTRY = "docker.io";

/** Host that serves the Docker Hub registry API. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

const DEFAULT_TAG = "latest";

/** Maximum length of the repository name, from the distribution spec. */
const MAX_NAME_LENGTH = 255;

// One path component: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

// A host name or IPv4 address, optionally with a port, or a bracketed IPv6 address.
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;

const TAG = /^[\w][\w.-]{0,127}$/;

// Only SHA-256 is accepted because the blob cache stores blobs by SHA-256.
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface ImageReference {
  /** Registry as written in references, such as `docker.io` or `localhost:5000`. */
  registry: string;
  /** Repository path inside the registry, such as `library/debian`. */
  repository: string;
  /** Tag, if one was given or defaulted. `latest` is used when neither tag nor digest is given. */
  tag?: string;
  /** Manifest digest. When both are given, the digest selects the manifest and the tag is for display. */
  digest?: string;
}

function invalid(value: string, reason: string): RegistryError {
  return new RegistryError("ERR_REFERENCE_INVALID", `invalid image reference "${value}": ${reason}`, {
    reference: value,
  });
}

/** Splits off the registry if the first component names one. */
function splitRegistry(name: string): [registry: string, path: string] {
  const slash = name.indexOf("/");
  if (slash === -1) return [DOCKER_HUB_REGISTRY, name];

  const first = name.slice(0, slash);
  const isHost = first.includes(".") || first.includes(":") || first === "localhost";
  if (!isHost) return [DOCKER_HUB_REGISTRY, name];
  return [first, name.slice(slash + 1)];
}

/** Maps the aliases of Docker Hub to `docker.io` and adds the `library/` prefix of official images. */
function normalizeDockerHub(registry: string, repository: string): [string, string] {
  if (registry === "index.docker.io" || registry === DOCKER_HUB_REGISTRY) {
    const path = repository.includes("/") ? repository : `library/${repository}`;
    return [DOCKER_HUB_REGISTRY, path];
  }
  return [registry, repository];
}

/**
 * Parses an image reference such as `alpine`, `docker.io/library/debian:bookworm`
 * or `localhost:5000/repo@sha256:...`, applying Docker Hub's defaults.
 * Throws `ERR_REFERENCE_INVALID` naming the value.
 */
export function parseReference(value: string): ImageReference {
  if (value.length === 0) throw invalid(value, "the reference is empty");
  if (value !== value.trim()) throw invalid(value, "the reference contains leading or trailing spaces");

  let rest = value;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(value, `digest "${digest}" is not sha256: followed by 64 lowercase hex digits`);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(value, `tag "${tag}" must be 1 to 128 of [A-Za-z0-9_.-] and not start with . or -`);
  }

  const [rawRegistry, rawRepository] = splitRegistry(rest);
  if (!DOMAIN.test(rawRegistry)) throw invalid(value, `registry "${rawRegistry}" is not a valid host name`);
  if (rawRepository.length === 0) throw invalid(value, "the repository name is empty");
  for (const component of rawRepository.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(
        value,
        `repository component "${component}" must be lowercase letters and digits, separated by ".", "_", "__" or "-"`,
      );
    }
  }

  const [registry, repository] = normalizeDockerHub(rawRegistry, rawRepository);
  if (repository.length > MAX_NAME_LENGTH) {
    throw invalid(value, `the repository name is longer than ${MAX_NAME_LENGTH} characters`);
  }

  const reference: ImageReference = { registry, repository };
  if (tag !== undefined) reference.tag = tag;
  else if (digest === undefined) reference.tag = DEFAULT_TAG;
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

/** Formats a reference in full, such as `docker.io/library/alpine:latest`. */
export function formatReference(reference: ImageReference): string {
  let text = `${reference.registry}/${reference.repository}`;
  if (reference.tag !== undefined) text += `:${reference.tag}`;
  if (reference.digest !== undefined) text += `@${reference.digest}`;
  return text;
}

/** Returns the host that serves the registry API, which differs from the reference name only for Docker Hub. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB_REGISTRY ? DOCKER_HUB_API_HOST : registry;
}

/** Returns the tag or digest to ask the manifests endpoint for; the digest wins. */
export function manifestSelector(reference: ImageReference): string {
  return reference.digest ?? reference.tag ?? DEFAULT_TAG;
}
