import { formatLoad, runLoad } from './load';

/**
 * bench:load — N prompts (LOAD_PROMPTS, default 100,000) through generate → verify → filter against the fast local
 * teacher on a real dev server and a real CPU worker; prints each process's peak RSS and the largest history.
 * LOAD_N (samples per prompt, default 4), LOAD_SHARD_SIZE (100), LOAD_SHARDS_IN_FLIGHT (4), LOAD_CONCURRENCY (16),
 * LOAD_KEEP=1 keeps the temp dir.
 */
async function main(): Promise<void> {
  const prompts = Number(process.env.LOAD_PROMPTS ?? 100_000);
  const r = await runLoad({
    prompts,
    n: Number(process.env.LOAD_N ?? 4),
    shardSize: Number(process.env.LOAD_SHARD_SIZE ?? 100),
    maxShardsInFlight: Number(process.env.LOAD_SHARDS_IN_FLIGHT ?? 4),
    concurrency: Number(process.env.LOAD_CONCURRENCY ?? 16),
    keep: process.env.LOAD_KEEP === '1',
  });
  console.log(formatLoad(r));
  if (process.env.LOAD_KEEP === '1') console.log(`kept: ${r.tmp}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
