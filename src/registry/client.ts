/**
 * A client for one registry: picks HTTP or HTTPS, authenticates (anonymous,
 * basic, or bearer tokens cached per scope), retries transient failures and
 * turns failures into `RegistryError`s with stable codes.
 */

import type http from "node:http";

import { RegistryError } from "../errors.js";
import { parseChallenges } from "./auth/challenge.js";
import type { RegistryCredentials } from "./auth/credentials.js";
import { readDockerCredentials } from "./auth/credentials.js";
import type { BearerChallenge, CachedToken } from "./auth/token.js";
import { basicAuthorization, buildTokenRequest, parseTokenResponse } from "./auth/token.js";
import { registryApiHost } from "./reference.js";
import type { RetryPolicy } from "./retry.js";
import { DEFAULT_RETRY_POLICY, backoffDelay, isRetryableStatus, parseRetryAfter, sleep } from "./retry.js";
import type { Agents, HttpRequest, Timeouts, TlsOptions } from "./transport.js";
import {
  TransportAbortedError,
  TransportTimeoutError,
  TransportTlsError,
  createAgents,
  destroyAgents,
  isLoopbackHost,
  readBody,
  sendFollowingRedirects,
} from "./transport.js";

export interface RegistryClientOptions {
  /** Registries (as `host[:port]`) reached over plain HTTP. Loopback hosts are too, unless listed in `httpsRegistries`. */
  insecureRegistries?: string[];
  /** Loopback registries (as `host[:port]`) reached over HTTPS instead of plain HTTP. Other hosts use HTTPS anyway. */
  httpsRegistries?: string[];
  /** TLS settings for every HTTPS request: the registry, its token server and redirect targets. */
  tls?: TlsOptions;
  /** Credentials to use instead of the Docker config file. */
  credentials?: RegistryCredentials;
  /** Docker config file to read credentials from, or false to read none. Defaults to `$DOCKER_CONFIG/config.json`. */
  dockerConfig?: string | false;
  timeouts?: Partial<Timeouts>;
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 30_000, idleMs: 60_000 };

/** Largest error or token response body read, in bytes. */
const MAX_SMALL_BODY = 1 << 20;

/** Description of a request's target, so that errors can name the image and the digest. */
export interface RequestContext {
  /** Image reference being pulled, as the user wrote it or in full. */
  reference: string;
  /** Human description of the object, such as `manifest latest` or `blob sha256:...`. */
  object: string;
  digest?: string;
}

export interface RegistryRequest {
  /** Path below the registry root, such as `/v2/library/alpine/manifests/latest`. */
  path: string;
  method?: "GET" | "HEAD";
  headers?: Record<string, string>;
  /** Token scope, such as `repository:library/alpine:pull`. */
  scope: string;
  context: RequestContext;
  signal?: AbortSignal;
}

/** Transport errors that another attempt may cure. */
function isTransientNetworkError(error: unknown): boolean {
  if (error instanceof TransportTimeoutError) return true;
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ECONNRESET" || code === "ECONNREFUSED" || code === "EPIPE" || code === "ETIMEDOUT" || code === "EAI_AGAIN";
}

/** Extracts `CODE: message` pairs from a registry's JSON error body, as the distribution spec defines it. */
function describeErrorBody(body: Buffer): string {
  try {
    const json = JSON.parse(body.toString("utf8")) as { errors?: Array<{ code?: string; message?: string }> };
    const parts = (json.errors ?? []).map((entry) => [entry.code, entry.message].filter(Boolean).join(": "));
    return parts.filter(Boolean).join("; ");
  } catch {
    return "";
  }
}

function statusText(response: http.IncomingMessage): string {
  return `${response.statusCode}${response.statusMessage ? ` ${response.statusMessage}` : ""}`;
}

export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: URL;
  private readonly options: RegistryClientOptions;
  private readonly timeouts: Timeouts;
  private readonly policy: RetryPolicy;
  private readonly agents: Agents;
  private credentials: Promise<RegistryCredentials | undefined> | undefined;
  private bearer: BearerChallenge | undefined;
  private basic = false;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pendingTokens = new Map<string, Promise<CachedToken>>();

  /** `registry` is the registry as written in references, such as `docker.io` or `127.0.0.1:5000`. */
  constructor(registry: string, options: RegistryClientOptions = {}) {
    this.registry = registry;
    this.options = options;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    const host = registryApiHost(registry);
    const conflicting = (options.httpsRegistries ?? []).filter((entry) => (options.insecureRegistries ?? []).includes(entry));
    if (conflicting.length > 0) {
      throw new RegistryError(
        "ERR_REGISTRY_OPTIONS_INVALID",
        `${conflicting.join(", ")} is listed in both insecureRegistries and httpsRegistries; remove it from one of them`,
      );
    }
    this.agents = createAgents(options.tls);
    this.baseUrl = new URL(`${this.allowsPlainHttp(host) ? "http" : "https"}://${host}`);
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    destroyAgents(this.agents);
  }

  /**
   * Tells whether `host` may be reached over plain HTTP: loopback and not
   * listed in `httpsRegistries`, or listed in `insecureRegistries`.
   */
  allowsPlainHttp(host: string): boolean {
    const httpsOnly = this.options.httpsRegistries ?? [];
    if (httpsOnly.includes(host) || (host === registryApiHost(this.registry) && httpsOnly.includes(this.registry))) return false;
    if (isLoopbackHost(host)) return true;
    const insecure = this.options.insecureRegistries ?? [];
    return insecure.includes(host) || insecure.includes(this.registry);
  }

  /**
   * Sends a request and resolves with a successful response (2xx), after
   * authenticating and retrying as needed. The caller must consume or
   * destroy the response body.
   */
  async request(request: RegistryRequest): Promise<http.IncomingMessage> {
    return this.exchange(request, () => this.send(request), (response) => this.learnChallenge(response));
  }

  /**
   * Runs `send` until it yields a 2xx response, retrying transient network
   * errors and retryable statuses with backoff. The first 401 for which
   * `onUnauthorized` returns true is retried at once and does not count as
   * an attempt, because it only starts authentication.
   */
  private async exchange(
    request: Pick<RegistryRequest, "context" | "signal">,
    send: () => Promise<http.IncomingMessage>,
    onUnauthorized: (response: http.IncomingMessage) => boolean = () => false,
  ): Promise<http.IncomingMessage> {
    let authenticated = false;
    for (let attempt = 1; ; attempt += 1) {
      const lastAttempt = attempt >= this.policy.attempts;
      let response: http.IncomingMessage;
      try {
        response = await send();
      } catch (error) {
        if (lastAttempt || !isTransientNetworkError(error) || request.signal?.aborted) {
          throw this.networkError(error, request);
        }
        await this.wait(backoffDelay(this.policy, attempt - 1), request);
        continue;
      }

      const status = response.statusCode ?? 0;
      if (status >= 200 && status < 300) return response;

      if (status === 401 && !authenticated && onUnauthorized(response)) {
        response.resume();
        authenticated = true;
        attempt -= 1;
        continue;
      }

      if (isRetryableStatus(status) && !lastAttempt) {
        const retryAfter = parseRetryAfter(response.headers["retry-after"] as string | undefined);
        response.resume();
        if (retryAfter !== undefined && retryAfter > this.policy.maxRetryAfterMs) {
          const seconds = Math.round(retryAfter / 1000);
          throw this.statusError(response, request, "", `and its Retry-After of ${seconds} s exceeds retry.maxRetryAfterMs`);
        }
        await this.wait(retryAfter ?? backoffDelay(this.policy, attempt - 1), request);
        continue;
      }

      const body = await readBody(response, MAX_SMALL_BODY).catch(() => Buffer.alloc(0));
      throw this.statusError(response, request, describeErrorBody(body));
    }
  }

  private async send(request: RegistryRequest): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = { ...request.headers };
    headers["user-agent"] = this.options.userAgent ?? "layerdisk";
    const authorization = await this.authorizationFor(request.scope, request);
    if (authorization !== undefined) headers.authorization = authorization;

    const httpRequest: HttpRequest = { url: new URL(request.path, this.baseUrl), method: request.method ?? "GET", headers };
    if (request.signal !== undefined) httpRequest.signal = request.signal;
    const { response } = await sendFollowingRedirects(httpRequest, this.timeouts, this.agents, (host) =>
      this.allowsPlainHttp(host),
    );
    return response;
  }

  private async wait(ms: number, request: Pick<RegistryRequest, "context" | "signal">): Promise<void> {
    try {
      await sleep(ms, request.signal);
    } catch {
      // sleep rejects only when the signal aborts.
      throw this.networkError(new TransportAbortedError(this.baseUrl.href), request);
    }
  }

  /** Records the scheme from a 401 challenge. Returns false when the response has no usable challenge. */
  private learnChallenge(response: http.IncomingMessage): boolean {
    const header = response.headers["www-authenticate"];
    const challenges = parseChallenges(Array.isArray(header) ? header.join(", ") : (header ?? ""));
    const bearer = challenges.find((challenge) => challenge.scheme === "bearer" && challenge.parameters.realm);
    if (bearer !== undefined) {
      const challenge: BearerChallenge = { realm: bearer.parameters.realm! };
      if (bearer.parameters.service !== undefined) challenge.service = bearer.parameters.service;
      this.bearer = challenge;
      this.tokens.clear();
      return true;
    }
    if (challenges.some((challenge) => challenge.scheme === "basic")) {
      this.basic = true;
      return true;
    }
    return false;
  }

  private loadCredentials(): Promise<RegistryCredentials | undefined> {
    if (this.credentials === undefined) {
      if (this.options.credentials !== undefined) this.credentials = Promise.resolve(this.options.credentials);
      else if (this.options.dockerConfig === false) this.credentials = Promise.resolve(undefined);
      else this.credentials = readDockerCredentials(this.registry, this.options.dockerConfig);
    }
    return this.credentials;
  }

  private async authorizationFor(scope: string, request: RegistryRequest): Promise<string | undefined> {
    if (this.bearer !== undefined) {
      const cached = this.tokens.get(scope);
      if (cached !== undefined && cached.expiresAt > Date.now()) return cached.authorization;
      return (await this.fetchTokenOnce(this.bearer, scope, request)).authorization;
    }
    if (this.basic) {
      const credentials = await this.loadCredentials();
      if (credentials?.username === undefined) return undefined;
      return basicAuthorization(credentials.username, credentials.password ?? "");
    }
    return undefined;
  }

  /** Fetches a token for `scope`, sharing one request among concurrent callers. */
  private fetchTokenOnce(challenge: BearerChallenge, scope: string, request: RegistryRequest): Promise<CachedToken> {
    let pending = this.pendingTokens.get(scope);
    if (pending === undefined) {
      pending = this.fetchToken(challenge, scope, request).finally(() => this.pendingTokens.delete(scope));
      this.pendingTokens.set(scope, pending);
    }
    return pending;
  }

  private async fetchToken(challenge: BearerChallenge, scope: string, request: RegistryRequest): Promise<CachedToken> {
    const credentials = await this.loadCredentials();
    const tokenRequest = buildTokenRequest(challenge, scope, credentials);
    const httpRequest: HttpRequest = {
      ...tokenRequest,
      headers: { ...tokenRequest.headers, "user-agent": this.options.userAgent ?? "layerdisk" },
    };
    if (request.signal !== undefined) httpRequest.signal = request.signal;
    const tokenContext = { ...request, context: { ...request.context, object: `token for ${scope} from ${challenge.realm}` } };

    const response = await this.exchange(tokenContext, async () => {
      const { response: received } = await sendFollowingRedirects(httpRequest, this.timeouts, this.agents, (host) => this.allowsPlainHttp(host));
      return received;
    });
    const body = await readBody(response, MAX_SMALL_BODY).catch((error: unknown) => {
      throw this.networkError(error, tokenContext);
    });

    try {
      const token = parseTokenResponse(body);
      this.tokens.set(scope, token);
      return token;
    } catch (error) {
      throw new RegistryError(
        "ERR_REGISTRY_AUTH_FAILED",
        `token server ${challenge.realm} returned an invalid token response for ${scope} while pulling ${request.context.reference}: ${(error as Error).message}`,
        { reference: request.context.reference, cause: error },
      );
    }
  }

  private statusError(response: http.IncomingMessage, request: Pick<RegistryRequest, "context">, detail: string, extra = ""): RegistryError {
    const { reference, object, digest } = request.context;
    const status = response.statusCode ?? 0;
    const suffix = `(${statusText(response)}${detail ? `, ${detail}` : ""})${extra ? ` ${extra}` : ""}`;
    const details = { reference, status, ...(digest === undefined ? {} : { digest }) };
    const subject = `${object} of ${reference}`;

    if (status === 401 || status === 403) {
      return new RegistryError(
        "ERR_REGISTRY_UNAUTHORIZED",
        `access to ${subject} was denied ${suffix}; check the credentials in the Docker config or the options`,
        details,
      );
    }
    if (status === 404) return new RegistryError("ERR_REGISTRY_NOT_FOUND", `${subject} was not found ${suffix}`, details);
    if (status === 429) {
      return new RegistryError("ERR_REGISTRY_TOO_MANY_REQUESTS", `the registry rate-limited requests for ${subject} ${suffix}; try again later`, details);
    }
    if (status >= 500) {
      const attempts = isRetryableStatus(status) ? ` after ${this.policy.attempts} attempts` : "";
      return new RegistryError("ERR_REGISTRY_SERVER", `the registry failed to serve ${subject} ${suffix}${attempts}`, details);
    }
    return new RegistryError("ERR_REGISTRY_UNEXPECTED_STATUS", `the registry returned an unexpected status for ${subject} ${suffix}`, details);
  }

  /** Maps a transport failure to a `RegistryError`. */
  networkError(error: unknown, request: Pick<RegistryRequest, "context">): RegistryError {
    if (error instanceof RegistryError) return error;
    const { reference, object, digest } = request.context;
    const details = { reference, cause: error, ...(digest === undefined ? {} : { digest }) };
    const subject = `${object} of ${reference}`;

    if (error instanceof TransportTimeoutError) {
      return new RegistryError(
        "ERR_REGISTRY_TIMEOUT",
        `fetching ${subject} timed out: ${error.message}; raise the timeouts option if the registry is slow`,
        details,
      );
    }
    if (error instanceof TransportTlsError) {
      return new RegistryError("ERR_REGISTRY_TLS", `fetching ${subject} failed: ${error.message}`, details);
    }
    if (error instanceof TransportAbortedError) {
      return new RegistryError("ERR_REGISTRY_ABORTED", `fetching ${subject} was aborted`, details);
    }
    return new RegistryError("ERR_REGISTRY_NETWORK", `fetching ${subject} failed: ${(error as Error).message}`, details);
  }
}
