import { AppError } from '../../errors';

/**
 * Races `work` against a timer; on expiry rejects with UPSTREAM_TIMEOUT naming the dependency. The timer is
 * always cleared. Errors that are not AppErrors become UPSTREAM_UNAVAILABLE (the cause is kept for logs).
 */
export async function withTimeout<T>(dependency: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AppError('UPSTREAM_TIMEOUT', `${dependency} did not answer within ${timeoutMs} ms.`, { dependency, timeoutMs })),
      timeoutMs,
    );
    timer.unref?.();
  });
  try {
    return await Promise.race([work(), expired]);
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError('UPSTREAM_UNAVAILABLE', `${dependency} failed.`, { dependency }, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
