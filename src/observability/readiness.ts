import type { DependencyStatus } from './metrics';

/** A dependency `/readyz` reports; `check` throwing (or not settling within `timeoutMs`) means down. */
export interface ReadinessCheck {
  name: string;
  /** Throws when down; may resolve with figures to show in the report (`detail`). */
  check: () => Promise<void | ReadinessDetail>;
  /**
   * Whether the dependency being down makes kbql not ready (HTTP 503). A non-critical one (a cache, a provider only
   * some operations need) is reported as degraded while /readyz stays 200, so Kubernetes keeps routing traffic.
   * @default true
   */
  critical?: boolean;
  /**
   * Longest the check may take, in ms.
   * @default 2000
   */
  timeoutMs?: number;
  /**
   * How long a result is reused, in ms, so frequent probes and scrapes do not hammer a remote dependency.
   * @default 0
   */
  cacheMs?: number;
}

export type DependencyState = 'up' | 'down';

/** Figures a check adds to its report, e.g. `{ indexedFraction: 0.98 }`. */
export type ReadinessDetail = Record<string, string | number | boolean | null>;

export interface DependencyReport {
  status: DependencyState;
  critical: boolean;
  latencyMs: number;
  /** Why it is down (the error message; checks must not put secrets in their errors). */
  error?: string;
  /** What the check reported when up. */
  detail?: ReadinessDetail;
}

export interface ReadinessReport {
  /** `ready`: all up; `degraded`: only non-critical dependencies down; `not ready`: a critical one down. */
  status: 'ready' | 'degraded' | 'not ready';
  checks: Record<string, DependencyReport>;
}

/** Runs a fixed list of checks concurrently, each bounded by its timeout and cached for its `cacheMs`. */
export class Readiness {
  private readonly cache = new Map<string, { at: number; report: Promise<DependencyReport> }>();

  constructor(readonly checks: readonly ReadinessCheck[]) {}

  async report(): Promise<ReadinessReport> {
    const entries = await Promise.all(this.checks.map(async (c) => [c.name, await this.run(c)] as const));
    const checks = Object.fromEntries(entries);
    const down = entries.filter(([, r]) => r.status === 'down');
    const status = down.some(([, r]) => r.critical) ? 'not ready' : down.length > 0 ? 'degraded' : 'ready';
    return { status, checks };
  }

  /** Each dependency's state, for `kbql_dependency_up`. */
  async dependencies(): Promise<DependencyStatus[]> {
    const { checks } = await this.report();
    return Object.entries(checks).map(([name, r]) => ({ name, critical: r.critical, ok: r.status === 'up' }));
  }

  private run(check: ReadinessCheck): Promise<DependencyReport> {
    const now = Date.now();
    const cached = this.cache.get(check.name);
    if (cached && now - cached.at < (check.cacheMs ?? 0)) return cached.report;
    const report = probe(check);
    if (check.cacheMs) this.cache.set(check.name, { at: now, report });
    return report;
  }
}

async function probe(check: ReadinessCheck): Promise<DependencyReport> {
  const critical = check.critical ?? true;
  const timeoutMs = check.timeoutMs ?? 2000;
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([
      Promise.resolve().then(check.check),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    const report: DependencyReport = { status: 'up', critical, latencyMs: Math.round(performance.now() - started) };
    return detail ? { ...report, detail } : report;
  } catch (error) {
    return {
      status: 'down',
      critical,
      latencyMs: Math.round(performance.now() - started),
      error: error instanceof Error ? error.message : 'failed',
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A check that a provider's HTTP endpoint answers: any status below 500 except 401/403 counts as up (a server that
 * answers 404 to `url` is still reachable). `headers` may carry credentials; they never appear in the report.
 */
export function httpReadinessCheck(options: {
  name: string;
  url: string;
  headers?: Record<string, string>;
  critical?: boolean;
  timeoutMs?: number;
  cacheMs?: number;
}): ReadinessCheck {
  const timeoutMs = options.timeoutMs ?? 2000;
  return {
    name: options.name,
    critical: options.critical,
    timeoutMs,
    cacheMs: options.cacheMs,
    async check() {
      let response: Response;
      try {
        response = await fetch(options.url, { headers: options.headers, signal: AbortSignal.timeout(timeoutMs) });
      } catch (error) {
        const cause = (error as { cause?: { code?: unknown } }).cause?.code;
        throw new Error(`${new URL(options.url).host} unreachable${typeof cause === 'string' ? ` (${cause})` : ''}`);
      }
      await response.body?.cancel();
      if (response.status >= 500 || response.status === 401 || response.status === 403) {
        throw new Error(`${new URL(options.url).host} answered HTTP ${response.status}`);
      }
    },
  };
}
