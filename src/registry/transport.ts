/**
 * One HTTP exchange with a registry or its blob storage, over node:http and
 * node:https, with connect and idle timeouts, cancellation and redirects.
 * Retries and authentication are layered on top (retry.ts, client.ts).
 */

import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import tls from "node:tls";

/** Errors from this module that the client maps to registry error codes. */
export class TransportTimeoutError extends Error {
  constructor(readonly phase: "connect" | "idle", readonly timeoutMs: number, readonly url: string) {
    super(phase === "connect" ? `connecting to ${url} took longer than ${timeoutMs} ms` : `no data from ${url} for ${timeoutMs} ms`);
    this.name = "TransportTimeoutError";
  }
}

export class TransportAbortedError extends Error {
  constructor(readonly url: string) {
    super(`request to ${url} was aborted`);
    this.name = "TransportAbortedError";
  }
}

export class TooManyRedirectsError extends Error {
  constructor(readonly url: string, max: number) {
    super(`${url} redirected more than ${max} times`);
    this.name = "TooManyRedirectsError";
  }
}

export class InsecureRedirectError extends Error {
  constructor(readonly from: string, readonly to: string) {
    super(`rejected the redirect from ${from} to plain HTTP ${to}; list the target host in insecureRegistries, and not in httpsRegistries, to allow it`);
    this.name = "InsecureRedirectError";
  }
}

/** OpenSSL and Node codes for a server certificate that failed verification. */
const CERTIFICATE_ERROR_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_REVOKED",
  "CERT_SIGNATURE_FAILURE",
  "INVALID_CA",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * An HTTPS request that failed in TLS. `kind` is "certificate" when the
 * server's certificate did not verify, and "handshake" for other TLS
 * failures, as when the server speaks plain HTTP.
 */
export class TransportTlsError extends Error {
  readonly host: string;
  readonly kind: "certificate" | "handshake";
  readonly tlsCode: string;

  constructor(readonly url: string, cause: NodeJS.ErrnoException) {
    const host = new URL(url).host;
    const tlsCode = cause.code ?? "unknown";
    const kind = CERTIFICATE_ERROR_CODES.has(tlsCode) ? "certificate" : "handshake";
    const reason = opensslReason(cause.message);
    const message =
      kind === "certificate"
        ? `the TLS certificate of ${host} was rejected (${tlsCode}: ${reason}); if the registry uses a private CA, pass its certificate in the tls.ca option`
        : `the TLS handshake with ${host} failed (${tlsCode}: ${reason}); if the registry serves plain HTTP, list it in insecureRegistries and not in httpsRegistries`;
    super(message, { cause });
    this.name = "TransportTlsError";
    this.host = host;
    this.kind = kind;
    this.tlsCode = tlsCode;
  }
}

/**
 * Extracts the reason from an OpenSSL error string such as
 * `write EPROTO 80...:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:...`.
 */
function opensslReason(message: string): string {
  return /SSL routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message;
}

/**
 * Tells whether an error from an HTTPS request comes from TLS rather than
 * from TCP or HTTP. Node reports OpenSSL protocol errors, such as a reply
 * in plain HTTP, as `EPROTO` or `ERR_SSL_*`.
 */
function isTlsError(error: NodeJS.ErrnoException): boolean {
  const code = error.code ?? "";
  if (CERTIFICATE_ERROR_CODES.has(code) || code.startsWith("ERR_SSL_") || code === "ERR_TLS_HANDSHAKE_TIMEOUT") return true;
  return code === "EPROTO" && error.message.includes("SSL routines");
}

export interface TlsOptions {
  /**
   * Extra CA certificates (PEM) to trust, in addition to Node's bundled
   * root certificates and the file in `NODE_EXTRA_CA_CERTS`.
   */
  ca?: string | Buffer | Array<string | Buffer>;
}

export interface Timeouts {
  /** Time allowed to open the TCP connection, in milliseconds. */
  connectMs: number;
  /** Maximum time without receiving a byte, while waiting for headers or body, in milliseconds. */
  idleMs: number;
}

export interface HttpRequest {
  url: URL;
  method?: "GET" | "HEAD" | "POST" | "PUT";
  headers?: Record<string, string>;
  body?: Buffer;
  signal?: AbortSignal;
}

export interface Agents {
  http: http.Agent;
  https: https.Agent;
}

/** Maximum number of redirects followed for one request, as browsers and Docker allow. */
export const MAX_REDIRECTS = 10;

/**
 * Builds the CA list for an HTTPS agent. Node's `ca` option replaces the
 * default trust store, so the bundled roots and `NODE_EXTRA_CA_CERTS` are
 * added back. Returns undefined, which keeps Node's defaults, when no
 * extra CA is given.
 */
export function trustedCertificates(options: TlsOptions = {}): Array<string | Buffer> | undefined {
  if (options.ca === undefined) return undefined;
  const extra = Array.isArray(options.ca) ? options.ca : [options.ca];
  const certificates: Array<string | Buffer> = [...tls.rootCertificates, ...extra];
  const extraFile = process.env.NODE_EXTRA_CA_CERTS;
  if (extraFile) {
    try {
      certificates.push(readFileSync(extraFile));
    } catch {
      // Node already warned at startup that it could not read this file.
    }
  }
  return certificates;
}

/** Creates keep-alive agents that one pull shares and destroys at its end. */
export function createAgents(tlsOptions: TlsOptions = {}): Agents {
  const ca = trustedCertificates(tlsOptions);
  return {
    http: new http.Agent({ keepAlive: true }),
    https: new https.Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) }),
  };
}

export function destroyAgents(agents: Agents): void {
  agents.http.destroy();
  agents.https.destroy();
}

/** Tells whether a host (with optional port) is a loopback address or `localhost`. */
export function isLoopbackHost(hostWithPort: string): boolean {
  let host = hostWithPort;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.lastIndexOf(":") !== -1 && isIP(host) !== 6) host = host.slice(0, host.lastIndexOf(":"));
  host = host.toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}

/**
 * Sends one request and resolves with the response once its headers arrive.
 * The idle timeout keeps running while the caller reads the body: a stall
 * destroys the response with a `TransportTimeoutError`, and an abort with a
 * `TransportAbortedError`.
 */
export function sendRequest(request: HttpRequest, timeouts: Timeouts, agents: Agents): Promise<http.IncomingMessage> {
  const { url, signal } = request;
  const isHttps = url.protocol === "https:";
  const module = isHttps ? https : http;

  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new TransportAbortedError(url.href));
      return;
    }

    let response: http.IncomingMessage | undefined;
    const options: https.RequestOptions = {
      method: request.method ?? "GET",
      headers: request.headers ?? {},
      agent: isHttps ? agents.https : agents.http,
    };
    const outgoing = module.request(url, options);

    const fail = (error: Error): void => {
      if (response) response.destroy(error);
      else outgoing.destroy(error);
    };
    const onAbort = (): void => fail(new TransportAbortedError(url.href));
    signal?.addEventListener("abort", onAbort, { once: true });

    outgoing.on("socket", (socket) => {
      if (socket.connecting) {
        const connectTimer = setTimeout(() => fail(new TransportTimeoutError("connect", timeouts.connectMs, url.href)), timeouts.connectMs);
        socket.once("connect", () => clearTimeout(connectTimer));
        socket.once("close", () => clearTimeout(connectTimer));
      }
    });
    outgoing.setTimeout(timeouts.idleMs, () => fail(new TransportTimeoutError("idle", timeouts.idleMs, url.href)));

    outgoing.on("response", (incoming) => {
      response = incoming;
      incoming.once("close", () => signal?.removeEventListener("abort", onAbort));
      resolve(incoming);
    });
    outgoing.on("error", (error: NodeJS.ErrnoException) => {
      signal?.removeEventListener("abort", onAbort);
      reject(isHttps && isTlsError(error) ? new TransportTlsError(url.href, error) : error);
    });
    outgoing.end(request.body);
  });
}

function isRedirect(status: number | undefined): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * Sends a request and follows redirects, as registries do to send blob
 * downloads to storage such as S3. The `Authorization` header is dropped
 * when a redirect leaves the original host, because the registry's token
 * must not leak to another service and signed storage URLs reject it.
 * A redirect from HTTPS to plain HTTP is followed only if `allowPlainHttp`
 * accepts the target host.
 */
export async function sendFollowingRedirects(
  request: HttpRequest,
  timeouts: Timeouts,
  agents: Agents,
  allowPlainHttp: (host: string) => boolean,
): Promise<{ response: http.IncomingMessage; url: URL }> {
  let current = request;
  for (let redirects = 0; ; redirects += 1) {
    const response = await sendRequest(current, timeouts, agents);
    const location = response.headers.location;
    if (!isRedirect(response.statusCode) || location === undefined) return { response, url: current.url };

    response.resume();
    if (redirects >= MAX_REDIRECTS) throw new TooManyRedirectsError(request.url.href, MAX_REDIRECTS);

    const target = new URL(location, current.url);
    if (current.url.protocol === "https:" && target.protocol === "http:" && !allowPlainHttp(target.host)) {
      throw new InsecureRedirectError(current.url.href, target.href);
    }
    const headers = { ...current.headers };
    if (target.host !== request.url.host) {
      for (const name of Object.keys(headers)) {
        if (name.toLowerCase() === "authorization") delete headers[name];
      }
    }
    current = { ...current, url: target, headers };
  }
}

/** Reads a whole response body, rejecting bodies over `maxBytes`. */
export async function readBody(response: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response) {
    const buffer = chunk as Buffer;
    length += buffer.length;
    if (length > maxBytes) {
      response.destroy();
      throw new RangeError(`response body is larger than ${maxBytes} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}
