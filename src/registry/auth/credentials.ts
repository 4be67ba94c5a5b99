/**
 * Registry credentials from the Docker client's config file,
 * `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
 *
 * Only the `auths` section is read: `auth` (base64 of `user:password`),
 * `username`/`password`, and `identitytoken` (an OAuth2 refresh token).
 * NOTE: credential helpers (`credsStore`, `credHelpers`) are not run, so
 * logins kept in a system keychain are not found.
 */

import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

import { RegistryError } from "../../errors.js";
import { DOCKER_HUB_REGISTRY } from "../reference.js";

export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token, sent to the token server instead of a password. */
  identityToken?: string;
}

/** Key under which the Docker client stores Docker Hub logins. */
const DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/";

interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** Returns the path of the Docker client config file, honouring `DOCKER_CONFIG`. */
export function dockerConfigPath(environment: NodeJS.ProcessEnv = process.env): string {
  const folder = environment.DOCKER_CONFIG || join(homedir(), ".docker");
  return join(folder, "config.json");
}

/** Reduces a config key such as `https://host:5000/v2/` to `host:5000`. */
function hostOfKey(key: string): string {
  let host = key.replace(/^[a-z]+:\/\//i, "");
  const slash = host.indexOf("/");
  if (slash !== -1) host = host.slice(0, slash);
  return host.toLowerCase();
}

/** Returns the host names under which a registry's login may be stored. */
function configHostsFor(registry: string): string[] {
  if (registry === DOCKER_HUB_REGISTRY) {
    return [hostOfKey(DOCKER_HUB_CONFIG_KEY), "docker.io", "registry-1.docker.io"];
  }
  return [registry.toLowerCase()];
}

function decodeEntry(entry: DockerAuthEntry, file: string, key: string): RegistryCredentials {
  const credentials: RegistryCredentials = {};
  if (typeof entry.auth === "string" && entry.auth.length > 0) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon === -1) {
      throw new RegistryError(
        "ERR_REGISTRY_CREDENTIALS_INVALID",
        `the "auth" value for "${key}" in ${file} is not base64 of user:password; run docker login again`,
        { file },
      );
    }
    credentials.username = decoded.slice(0, colon);
    credentials.password = decoded.slice(colon + 1);
  } else {
    if (typeof entry.username === "string") credentials.username = entry.username;
    if (typeof entry.password === "string") credentials.password = entry.password;
  }
  if (typeof entry.identitytoken === "string" && entry.identitytoken.length > 0) {
    credentials.identityToken = entry.identitytoken;
  }
  return credentials;
}

/**
 * Finds the stored login for `registry` (as written in references, such as
 * `docker.io` or `localhost:5000`). Returns undefined when the file or the
 * entry is missing. Throws `ERR_REGISTRY_CREDENTIALS_INVALID` for a file that
 * is not valid JSON.
 */
export async function readDockerCredentials(
  registry: string,
  configFile: string = dockerConfigPath(),
): Promise<RegistryCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(configFile, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }

  let config: { auths?: Record<string, DockerAuthEntry> };
  try {
    config = JSON.parse(text) as typeof config;
  } catch (error) {
    throw new RegistryError(
      "ERR_REGISTRY_CREDENTIALS_INVALID",
      `Docker config ${configFile} is not valid JSON: ${(error as Error).message}`,
      { file: configFile, cause: error },
    );
  }

  const candidateHosts = configHostsFor(registry);
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (entry === null || typeof entry !== "object") continue;
    if (!candidateHosts.includes(hostOfKey(key))) continue;
    const credentials = decodeEntry(entry, configFile, key);
    if (credentials.username !== undefined || credentials.identityToken !== undefined) return credentials;
  }
  return undefined;
}
