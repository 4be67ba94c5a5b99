/**
 * Creates a counting semaphore for async tasks. At most `limit` tasks run at
 * once, and waiting tasks start in the order they were queued.
 */
export function createLimiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  const waiting: Array<() => void> = [];
  let running = 0;

  // A finishing task hands its slot straight to the next waiter, so no
  // newcomer can take it in between and exceed the limit.
  const release = (): void => {
    const next = waiting.shift();
    if (next !== undefined) next();
    else running -= 1;
  };

  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running < limit) running += 1;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      release();
    }
  };
}
