import type { ArtifactRef, SampleRow } from '../../schemas/artifact';
import { currentActivity } from '../activity-context';
import { AtomicJsonlWriter, exists, readJsonl } from '../artifacts/store';
import { layout } from '../artifacts/layout';
import { concatSidecars, type SidecarStats } from './logprobs-files';

export interface MergeShardsInput {
  runDir: string;
  shardCount: number;
}

export interface MergeShardsResult {
  samples: ArtifactRef;
  prompts: number;
  promptTokens: number;
  completionTokens: number;
  /** The teacher's top-k logprobs beside the samples (sampling.logprobs), when the shards have them. */
  logprobs?: SidecarStats;
}

/**
 * Joins the finished shards into one samples file, in shard order. It is also the exactly-once guard: a sample id
 * seen twice is a bug somewhere upstream and fails the stage rather than skewing the data.
 */
export async function mergeShards(input: MergeShardsInput): Promise<MergeShardsResult> {
  const out = new AtomicJsonlWriter(layout.samples(input.runDir));
  const ids = new Set<string>();
  const prompts = new Set<string>();
  let promptTokens = 0;
  let completionTokens = 0;
  const ctx = currentActivity();
  const sidecars: { sidecar: string; ids: string[] }[] = [];
  try {
    for (let i = 0; i < input.shardCount; i++) {
      const file = layout.shardSamples(input.runDir, i);
      if (!(await exists(file))) throw new Error(`shard ${i} has no finished samples file (${file})`);
      const shardIds: string[] = [];
      sidecars.push({ sidecar: layout.shardLogprobs(input.runDir, i), ids: shardIds });
      for await (const row of readJsonl<SampleRow>(file)) {
        shardIds.push(row.id);
        if (ids.has(row.id)) throw new Error(`duplicate sample id ${row.id} in shard ${i}`);
        ids.add(row.id);
        prompts.add(row.promptId);
        promptTokens += row.usage.promptTokens;
        completionTokens += row.usage.completionTokens;
        await out.write(row);
      }
      ctx?.heartbeat({ shard: i });
    }
    const have = await Promise.all(sidecars.map((s) => exists(s.sidecar)));
    if (have.some((h) => h) && !have.every((h) => h))
      throw new Error(`shard ${have.indexOf(false)} has no logprobs sidecar while others have one`);
    const logprobs =
      have.length && have.every((h) => h) ? await concatSidecars(layout.logprobs(input.runDir), sidecars) : undefined;
    return {
      samples: await out.finish(),
      prompts: prompts.size,
      promptTokens,
      completionTokens,
      ...(logprobs ? { logprobs } : {}),
    };
  } catch (err) {
    await out.abort();
    throw err;
  }
}
