import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { layout } from '../../activities/artifacts/layout';
import { readJsonl, writeJsonlAtomic } from '../../activities/artifacts/store';
import type { SampleRow } from '../../schemas/artifact';
import { SamplingSchema, TeacherSchema } from '../../schemas/run-spec';

/** A run directory holding one prepared shard of `prompts` arithmetic prompts. */
export async function shardDir(prompts: number): Promise<string> {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'shard-'));
  const rows = Array.from({ length: prompts }, (_, i) => ({
    id: `p${i}`,
    prompt: `Compute ${10 + i}+${20 + i}.`,
    answer: String(30 + 2 * i),
  }));
  await writeJsonlAtomic(layout.shardPrompts(runDir, 0), rows);
  return runDir;
}

export function shardInput(runDir: string, teacher: Record<string, unknown>, sampling: Record<string, unknown> = {}) {
  return {
    runDir,
    shardIndex: 0,
    teacher: TeacherSchema.parse({ model: 'procedural-arithmetic-teacher', concurrency: 3, ...teacher }),
    sampling: SamplingSchema.parse({ n: 3, temperature: 1, seed: 11, max_tokens: 200, ...sampling }),
  };
}

export async function shardRows(runDir: string): Promise<SampleRow[]> {
  const out: SampleRow[] = [];
  for await (const r of readJsonl<SampleRow>(layout.shardSamples(runDir, 0))) out.push(r);
  return out;
}
