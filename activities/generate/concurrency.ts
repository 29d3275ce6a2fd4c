/** Runs `fn` over items with at most `limit` in flight; the first failure stops new work and is rethrown. */
export async function mapWithConcurrency<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: unknown;
  const lanes = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        await fn(items[i] as T, i);
      } catch (err) {
        if (failed === undefined) failed = err;
      }
    }
  });
  await Promise.all(lanes);
  if (failed !== undefined) throw failed;
}
