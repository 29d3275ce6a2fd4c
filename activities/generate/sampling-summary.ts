import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { readJsonl } from '../artifacts/store';
import type { StopReason, StopRecord } from './adaptive-sampling';

/** A run's adaptive sampling, over all its committed shards: what the dataset card reports. */
export interface AdaptiveSamplingSummary {
  prompts: number;
  drawn: number;
  accepted: number;
  completionTokens: number;
  stopped: Record<StopReason, number>;
  /** Samples drawn → prompts that drew that many. */
  drawnPerPrompt: Record<string, number>;
  /** Where each prompt's record is (drawn, accepted, reason), relative to the run directory. */
  files: string[];
}

/** Reads generate/shard-*.sampling.jsonl (written by adaptive shards only); undefined when the run has none. */
export async function adaptiveSamplingSummary(runDir: string): Promise<AdaptiveSamplingSummary | undefined> {
  const dir = path.join(runDir, 'generate');
  const names = (await fs.readdir(dir).catch(() => [] as string[]))
    .filter((f) => /^shard-\d+\.sampling\.jsonl$/.test(f))
    .sort();
  if (!names.length) return undefined;
  const out: AdaptiveSamplingSummary = {
    prompts: 0,
    drawn: 0,
    accepted: 0,
    completionTokens: 0,
    stopped: { target: 0, max_samples: 0, gave_up: 0, budget: 0 },
    drawnPerPrompt: {},
    files: names.map((f) => `generate/${f}`),
  };
  for (const f of names) {
    for await (const s of readJsonl<StopRecord['stopped']>(path.join(dir, f))) {
      out.prompts += 1;
      out.drawn += s.drawn;
      out.accepted += s.accepted;
      out.completionTokens += s.completionTokens;
      out.stopped[s.reason] = (out.stopped[s.reason] ?? 0) + 1;
      out.drawnPerPrompt[s.drawn] = (out.drawnPerPrompt[s.drawn] ?? 0) + 1;
    }
  }
  return out;
}
