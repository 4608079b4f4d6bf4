import { diag, DiagLogLevel } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Logger } from '../logger';
import { RecordedContextManager } from './context-manager';

export interface TracingSdkOptions {
  /** `service.name` (OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES still override it). */
  serviceName: string;
  serviceVersion?: string;
  /**
   * `otlp`: OTLP/HTTP, configured by the standard OTEL_EXPORTER_OTLP_* variables; `console`: stdout; or an exporter
   * (tests use an in-memory one).
   */
  exporter: 'otlp' | 'console' | SpanExporter;
  /**
   * Export each span as it ends instead of in batches (tests).
   * @default false
   */
  exportEachSpan?: boolean;
  /** Receives the SDK's own warnings and errors (a collector that cannot be reached, dropped spans). */
  logger?: Logger;
}

export interface TracingSdk {
  readonly provider: NodeTracerProvider;
  /** The registered context manager (whether it is carrying contexts now, for tests). */
  readonly contextManager: RecordedContextManager;
  /** Exports what is buffered and stops the SDK; safe to call twice. */
  shutdown(): Promise<void>;
}

/**
 * Sets the OpenTelemetry SDK up once for the process: a Node tracer provider registered as the global one (with
 * the W3C propagators, and context carried across `await` only while a trace is recorded: {@link RecordedContextManager}),
 * the exporter, the resource. Sampling follows
 * OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: parent-based, always on). kbql's plugins and wrappers only
 * use the API, so without this call every span is a no-op.
 */
export function startTracing(options: TracingSdkOptions): TracingSdk {
  const { logger } = options;
  if (logger) {
    const report = (level: 'warn' | 'error') => (message: string) => logger[level]('opentelemetry', { detail: message });
    const ignore = () => undefined;
    diag.setLogger({ error: report('error'), warn: report('warn'), info: ignore, debug: ignore, verbose: ignore }, DiagLogLevel.WARN);
  }
  const exporter =
    options.exporter === 'otlp' ? new OTLPTraceExporter() : options.exporter === 'console' ? new ConsoleSpanExporter() : options.exporter;
  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: options.serviceName,
        ...(options.serviceVersion ? { [ATTR_SERVICE_VERSION]: options.serviceVersion } : {}),
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [options.exportEachSpan ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
  });
  const contextManager = new RecordedContextManager();
  provider.register({ contextManager });
  let stopped: Promise<void> | null = null;
  return {
    provider,
    contextManager,
    shutdown() {
      stopped ??= provider.shutdown();
      return stopped;
    },
  };
}
