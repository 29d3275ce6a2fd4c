import * as path from 'node:path';

/** Where each stage keeps its files inside a run directory: one place, so stages and tests agree. */
const pad = (i: number) => String(i).padStart(5, '0');

export const layout = {
  shardPrompts: (runDir: string, shard: number) => path.join(runDir, 'prepare', 'shards', `prompts-${pad(shard)}.jsonl`),
  shardSamples: (runDir: string, shard: number) => path.join(runDir, 'generate', `shard-${pad(shard)}.jsonl`),
  samples: (runDir: string) => path.join(runDir, 'generate', 'samples.jsonl'),
  /** The teacher's top-k logprobs per sample (sampling.logprobs), one frame per sample in the samples' order. */
  shardLogprobs: (runDir: string, shard: number) => path.join(runDir, 'generate', `shard-${pad(shard)}.logprobs.bin`),
  logprobs: (runDir: string) => path.join(runDir, 'generate', 'logprobs.bin'),
  /** The sidecar aligned with the SFT file the student trains on (a filtered-out sample's record is dropped). */
  trainLogprobs: (runDir: string) => path.join(runDir, 'finetune', 'logprobs.bin'),
};
