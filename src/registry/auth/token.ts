/**
 * Bearer tokens from a registry's token server, as the Docker registry
 * token authentication spec describes: GET `realm?service=S&scope=X` with
 * basic credentials if any, or, with an identity token, the OAuth2 POST form
 * with `grant_type=refresh_token`. The response carries `token` (or
 * `access_token`), `expires_in` in seconds (60 when absent) and `issued_at`.
 */

import type { RegistryCredentials } from "./credentials.js";

/** Lifetime the token spec prescribes when the server sends no `expires_in`, in seconds. */
const DEFAULT_TOKEN_LIFETIME_S = 60;

/** Time before expiry at which a cached token is no longer used, in milliseconds. */
const EXPIRY_MARGIN_MS = 10_000;

export interface BearerChallenge {
  realm: string;
  service?: string;
}

export interface CachedToken {
  authorization: string;
  /** Epoch milliseconds after which the token must not be sent. */
  expiresAt: number;
}

export interface TokenRequest {
  url: URL;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: Buffer;
}

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}

/** Builds the request for a token covering `scope`. */
export function buildTokenRequest(
  challenge: BearerChallenge,
  scope: string,
  credentials: RegistryCredentials | undefined,
): TokenRequest {
  const url = new URL(challenge.realm);

  if (credentials?.identityToken !== undefined) {
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: credentials.identityToken,
      client_id: "layerdisk",
      scope,
    });
    if (challenge.service !== undefined) form.set("service", challenge.service);
    return {
      url,
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: Buffer.from(form.toString(), "utf8"),
    };
  }

  if (challenge.service !== undefined) url.searchParams.set("service", challenge.service);
  url.searchParams.set("scope", scope);
  const headers: Record<string, string> = {};
  if (credentials?.username !== undefined) {
    headers.authorization = basicAuthorization(credentials.username, credentials.password ?? "");
  }
  return { url, method: "GET", headers };
}

/** Parses a token response body; throws a plain Error describing what is wrong. */
export function parseTokenResponse(body: Buffer, now: number = Date.now()): CachedToken {
  const json = JSON.parse(body.toString("utf8")) as {
    token?: unknown;
    access_token?: unknown;
    expires_in?: unknown;
    issued_at?: unknown;
  };
  const token = typeof json.token === "string" && json.token !== "" ? json.token : json.access_token;
  if (typeof token !== "string" || token === "") throw new Error("the token response has no token or access_token");

  const lifetimeS = typeof json.expires_in === "number" && json.expires_in > 0 ? json.expires_in : DEFAULT_TOKEN_LIFETIME_S;
  const issued = typeof json.issued_at === "string" ? Date.parse(json.issued_at) : Number.NaN;
  // A server clock far from ours would make issued_at misleading, so it is
  // used only when it is earlier than now.
  const start = Number.isNaN(issued) || issued > now ? now : issued;
  return { authorization: `Bearer ${token}`, expiresAt: start + lifetimeS * 1000 - EXPIRY_MARGIN_MS };
}
