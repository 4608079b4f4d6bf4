/**
 * What "the network failed, another attempt may work" looks like in the errors of the clients kbql calls out with
 * (undici's fetch, node:http, the OpenAI and Ollama clients, weaviate-client): one reading for every adapter's retry
 * and breaker policy, so they agree on what is transient.
 */

/** Socket-level error codes of a connection that failed or broke (not a refusal by the service itself). */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);
const NETWORK_MESSAGE = /\b(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)\b|socket hang up|fetch failed/;

/** `error` and its causes, outermost first (at most `depth`: cause chains can be cyclic). */
export function causeChain(error: unknown, depth = 5): Error[] {
  const chain: Error[] = [];
  for (let e: unknown = error; e instanceof Error && chain.length < depth; e = e.cause) chain.push(e);
  return chain;
}

export interface NetworkFailureOptions {
  /**
   * Count a failed DNS lookup (ENOTFOUND) as transient: right for a service started next to kbql (a container whose
   * name resolves once it runs), wrong for a provider host name, where it means a typo.
   * @default false
   */
  dnsFailure?: boolean;
  /** Further messages that mean a transient failure for this client (e.g. gRPC's UNAVAILABLE). */
  message?: RegExp;
}

/** True when `error` or one of its causes is a failed or broken connection (by code, or by message). */
export function hasNetworkFailureCause(error: unknown, options: NetworkFailureOptions = {}): boolean {
  return causeChain(error).some((e) => {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || (options.dnsFailure === true && code === 'ENOTFOUND'))) return true;
    return NETWORK_MESSAGE.test(e.message) || (options.message?.test(e.message) ?? false);
  });
}

/** HTTP statuses worth another attempt: 408 (request timeout), 429 (rate limited) and 5xx. */
export const isTransientHttpStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500;
