import { parentPort } from 'node:worker_threads';
import { isAppError } from '../../errors';
import type { SerializedError, TaskReply } from './worker-pool';

/** A task handler of a worker thread: its result, and the buffers to move back instead of copying. */
export type TaskHandler = (input: never) => unknown; // a value or a promise of one

/** What a handler returns when part of its result should be transferred rather than copied. */
export interface Transferred<T> {
  value: T;
  transfer: ArrayBuffer[];
}

export const transferred = <T>(value: T, transfer: ArrayBuffer[]): Transferred<T> =>
  ({ value, transfer, [TRANSFERRED]: true }) as Transferred<T>;
const TRANSFERRED = Symbol('transferred');

/** The worker side of {@link WorkerPool}: answers `{ id, op, input }` messages with the named handler's result. */
export function serveWorkerTasks(handlers: Record<string, TaskHandler>): void {
  const port = parentPort;
  if (!port) throw new Error('serveWorkerTasks runs in a worker thread');
  port.on('message', (message: { id: number; op: string; input: unknown }) => {
    const handler = handlers[message.op];
    const reply = (r: TaskReply, transfer: ArrayBuffer[] = []) => port.postMessage(r, transfer);
    if (!handler) {
      reply({ id: message.id, ok: false, error: { message: `unknown task "${message.op}"` } });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.input as never))
      .then(
        (result) => {
          if (result && typeof result === 'object' && TRANSFERRED in result) {
            const t = result as unknown as Transferred<unknown>;
            reply({ id: message.id, ok: true, value: t.value }, t.transfer);
          } else {
            reply({ id: message.id, ok: true, value: result });
          }
        },
        (error: unknown) => reply({ id: message.id, ok: false, error: serializeError(error) }),
      );
  });
}

/** An error as it crosses the thread boundary (an AppError keeps its code and details). */
export function serializeError(error: unknown): SerializedError {
  if (isAppError(error)) return { message: error.message, code: error.code, details: { ...error.details } };
  return { message: error instanceof Error ? error.message : String(error) };
}
