import { EventEmitter } from 'node:events';
import type { JobEvent, JobEventBus } from '../../ports/job-store.port';

/** Progress events within one process (embedded mode: the process that runs a job is the one clients talk to). */
export class MemoryJobEventBus implements JobEventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    // One listener per subscription: many clients may watch many jobs.
    this.emitter.setMaxListeners(0);
  }

  async publish(event: JobEvent): Promise<void> {
    this.emitter.emit(event.jobId, event);
  }

  async subscribe(jobId: string, listener: (event: JobEvent) => void): Promise<() => void> {
    this.emitter.on(jobId, listener);
    return () => this.emitter.off(jobId, listener);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}
