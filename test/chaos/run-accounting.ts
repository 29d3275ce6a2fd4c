import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { readJsonl } from '../../activities/artifacts/store';

// ---------------------------------------------------------------------------------------------------------------
// A run's own accounting, from its files: every prompt got n samples, every sample a verdict, every accepted sample
// a filter decision. Counts ids, never trusts the counts a stage reports about itself.
// ---------------------------------------------------------------------------------------------------------------

export interface Accounting {
  /** Ids one stage should have passed on and the next stage's files do not hold (summed over the stages). */
  lost: number;
  /** Ids held twice (within a file, or in both the kept and the rejected file of a stage) or that no input explains. */
  duplicated: number;
  /** Per stage, for a row's note when something is off. */
  stages: { stage: string; in: number; out: number; lost: number; duplicated: number }[];
}

async function idList(
  file: string,
  key: (row: Record<string, unknown>) => string = (r) => String(r.id),
): Promise<string[]> {
  const ids: string[] = [];
  if (!existsSync(file)) return ids;
  for await (const row of readJsonl<Record<string, unknown>>(file)) ids.push(key(row));
  return ids;
}

/** `want` ids against the ids found in `files` (kept + rejected of one stage). */
function reconcile(stage: string, want: Iterable<string>, found: string[][]): Accounting['stages'][number] {
  const wanted = new Set(want);
  const seen = new Map<string, number>();
  for (const ids of found) for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  let lost = 0;
  for (const id of wanted) if (!seen.has(id)) lost += 1;
  let duplicated = 0;
  for (const [id, n] of seen) duplicated += n - 1 + (wanted.has(id) ? 0 : 1);
  return { stage, in: wanted.size, out: [...seen.keys()].length, lost, duplicated };
}

/**
 * The stages of a finished run (through filter) checked against each other from the files: prompts × n sample keys
 * (promptId#index) in generate/samples.jsonl, each sample id in verify's accepted or rejects, each accepted id in
 * filter's sft or rejects.
 */
export async function accountRun(runDir: string, n: number): Promise<Accounting> {
  const prompts = await idList(path.join(runDir, 'prepare', 'prompts.jsonl'));
  const sampleKeys = await idList(
    path.join(runDir, 'generate', 'samples.jsonl'),
    (r) => `${String(r.promptId)}#${String(r.sampleIndex)}`,
  );
  const sampleIds = await idList(path.join(runDir, 'generate', 'samples.jsonl'));
  const accepted = await idList(path.join(runDir, 'verify', 'accepted.jsonl'));
  const stages = [
    reconcile('prepare', prompts, [prompts]),
    reconcile(
      'generate',
      prompts.flatMap((p) => Array.from({ length: n }, (_, i) => `${p}#${i}`)),
      [sampleKeys],
    ),
    reconcile('verify', sampleIds, [accepted, await idList(path.join(runDir, 'verify', 'rejects.jsonl'))]),
    reconcile('filter', accepted, [
      await idList(path.join(runDir, 'filter', 'sft.jsonl')),
      await idList(path.join(runDir, 'filter', 'rejects.jsonl')),
    ]),
  ];
  return {
    lost: stages.reduce((t, s) => t + s.lost, 0),
    duplicated: stages.reduce((t, s) => t + s.duplicated, 0),
    stages,
  };
}

/** The stages of an Accounting that do not add up, for a row's note ('' when all do). */
export function accountingProblems(a: Accounting): string {
  return a.stages
    .filter((s) => s.lost || s.duplicated)
    .map((s) => `${s.stage}: ${s.in} in, ${s.out} out, ${s.lost} lost, ${s.duplicated} duplicated`)
    .join('; ');
}
