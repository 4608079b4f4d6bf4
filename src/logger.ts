import { isSpanContextValid, trace } from '@opentelemetry/api';
import pino from 'pino';

/**
 * Structured JSON lines (pino) on stderr. Callers see only this small interface, so the implementation can change
 * without touching them. Every line carries `time`, `level`, `msg`, the active trace and span ids when there is a
 * trace, and the caller's fields — with secrets and document text redacted (see {@link REDACTED_KEYS}).
 */
export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  error(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
}

/**
 * Field names whose values never reach a log line, at the top level or one level down (e.g. `headers.authorization`):
 * credentials, and the places document text, questions and GraphQL variables would travel.
 */
export const REDACTED_KEYS = [
  'authorization',
  'cookie',
  'set-cookie',
  'apiKey',
  'api_key',
  'x-api-key',
  'password',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  'OPENAI_API_KEY',
  'WEAVIATE_API_KEY',
  'variables',
  'content',
  'text',
  'question',
] as const;

export const REDACTED = '[redacted]';

const redactPaths = REDACTED_KEYS.flatMap((key) => {
  const safe = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
  const nested = safe.startsWith('[') ? `*${safe}` : `*.${safe}`;
  return [safe, nested];
});

/** A logger at `level`; `write` receives each line (default: stderr, written synchronously so nothing is lost on exit). */
export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
  const destination = write ? { write } : pino.destination({ dest: 2, sync: true });
  const log = pino(
    {
      level,
      base: undefined,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: redactPaths, censor: REDACTED },
      mixin() {
        const span = trace.getActiveSpan();
        const context = span?.spanContext();
        return context && isSpanContextValid(context) ? { traceId: context.traceId, spanId: context.spanId } : {};
      },
    },
    destination,
  );
  const at = (name: Exclude<LogLevel, 'silent'>) => (message: string, fields?: Record<string, unknown>) => {
    if (fields) log[name](fields, message);
    else log[name](message);
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}
