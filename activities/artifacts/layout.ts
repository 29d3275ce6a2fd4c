import * as path from 'node:path';

/** Where each stage keeps its files inside a run directory: one place, so stages and tests agree. */
const pad = (i: number) => String(i).padStart(5, '0');

export const layout = {
  shardPrompts: (runDir: string, shard: number) => path.join(runDir, 'prepare', 'shards', `prompts-${pad(shard)}.jsonl`),
  shardSamples: (runDir: string, shard: number) => path.join(runDir, 'generate', `shard-${pad(shard)}.jsonl`),
  samples: (runDir: string) => path.join(runDir, 'generate', 'samples.jsonl'),
};
