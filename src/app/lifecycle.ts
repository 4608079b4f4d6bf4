import type { Logger } from '../logger';

/** Stops one part: drains a server, closes a connection, clears a timer. */
export type Disposer = () => unknown;

/**
 * Shutdown as Apollo Server does it (`toDispose`): each part registers how to stop it as it is built, and
 * {@link Disposers.dispose} runs them in reverse order, so every part stops before the parts it was built on and
 * nobody maintains a hand-written order. Where an order is not the reverse of construction, the place of the
 * registration says so (see `createApp`).
 */
export class Disposers {
  private readonly parts: { name: string; dispose: Disposer }[] = [];
  private disposing: Promise<void> | null = null;

  constructor(private readonly logger: Pick<Logger, 'error'>) {}

  /** Registers the disposer of a part just built; `name` is what a failure is logged under. */
  add(name: string, dispose: Disposer): void {
    this.parts.push({ name, dispose });
  }

  /**
   * Runs every disposer once, last registered first, each after the previous one settled. The first is called
   * synchronously (a server's listener closes before this returns). A disposer that fails is logged and the others
   * still run; the returned promise then rejects with the first failure. Idempotent: later calls get the same promise.
   */
  dispose(): Promise<void> {
    this.disposing ??= this.runAll();
    return this.disposing;
  }

  private async runAll(): Promise<void> {
    const failures: unknown[] = [];
    for (const part of [...this.parts].reverse()) {
      try {
        await part.dispose();
      } catch (error) {
        this.logger.error('shutdown step failed', { part: part.name, error: error instanceof Error ? error.message : String(error) });
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  }
}
