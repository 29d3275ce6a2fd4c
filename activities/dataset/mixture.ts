import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { MixSource, RunSpec } from '../../schemas/run-spec';

/**
 * How each source of a mixture is processed, resolved once by prepare and written to prepare/sources.json, where
 * generation, verification and filtering read it (by the `source` each row carries): large or per-row data never
 * travels through workflow history.
 */
export interface SourcePlan {
  name: string;
  kind: MixSource['kind'];
  verifier: NonNullable<MixSource['verifier']>;
  think: NonNullable<MixSource['think']>;
  responses: MixSource['responses'];
  systemPrompt?: string;
  sampling?: MixSource['sampling'];
  weight?: number;
  maxSamples?: number;
  /** Overrides of the run's filters for this source (maxChars, language, length, repetition). */
  filters?: MixSource['filters'];
}

export interface SourceCounts {
  in: number;
  kept: number;
  quarantined: number;
}

export interface SourcesFile {
  sources: (SourcePlan & { prepare: SourceCounts })[];
  mixing: { seed: number; total?: number };
}

export function planOf(d: MixSource, runVerifier: RunSpec['verifier']['type']): SourcePlan {
  const reasoning = d.kind === 'reasoning';
  return {
    name: d.name,
    kind: d.kind,
    verifier: d.verifier ?? (reasoning ? runVerifier : 'none'),
    think: d.think ?? (reasoning ? 'required' : 'none'),
    responses: d.responses,
    ...(d.systemPrompt !== undefined ? { systemPrompt: d.systemPrompt } : {}),
    ...(d.sampling ? { sampling: d.sampling } : {}),
    ...(d.weight !== undefined ? { weight: d.weight } : {}),
    ...(d.maxSamples !== undefined ? { maxSamples: d.maxSamples } : {}),
    ...(d.filters ? { filters: d.filters } : {}),
  };
}

export function sourcesFileOf(runDir: string): string {
  return path.join(runDir, 'prepare', 'sources.json');
}

/** The run's source plans by name, or null for a single-source run (no sources.json). */
export async function loadSourcePlans(runDir: string): Promise<Map<string, SourcesFile['sources'][number]> | null> {
  let text: string;
  try {
    text = await fs.readFile(sourcesFileOf(runDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const file = JSON.parse(text) as SourcesFile;
  return new Map(file.sources.map((s) => [s.name, s]));
}

export async function loadSourcesFile(runDir: string): Promise<SourcesFile | null> {
  try {
    return JSON.parse(await fs.readFile(sourcesFileOf(runDir), 'utf8')) as SourcesFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export interface MixTarget {
  name: string;
  available: number;
  target: number;
  /** Share of the final set asked for (weight / Σ weights of the weighted part, scaled by that part's share). */
  targetShare: number;
}

/**
 * How many samples each source contributes. Sources with maxSamples take min(available, maxSamples). The weighted
 * ones share the rest of `total` (or, without total, the largest set in which no weighted source needs repetition)
 * by largest remainder, so each count is within one sample of weight × size. A weighted source whose target exceeds
 * what it has is repeated (the caller says so in the card). Sources without weight or maxSamples take everything.
 */
export function mixTargets(
  sources: { name: string; weight?: number; maxSamples?: number; available: number }[],
  total?: number,
): MixTarget[] {
  const fixed = sources.filter((s) => s.weight === undefined);
  const weighted = sources.filter((s) => s.weight !== undefined);
  const fixedCount = (s: (typeof sources)[number]) =>
    s.maxSamples !== undefined ? Math.min(s.available, s.maxSamples) : s.available;
  const fixedTotal = fixed.reduce((t, s) => t + fixedCount(s), 0);
  const wSum = weighted.reduce((t, s) => t + s.weight!, 0);
  let part = 0;
  if (weighted.length) {
    if (total !== undefined) part = Math.max(0, total - fixedTotal);
    else part = Math.min(...weighted.map((s) => Math.floor((s.available * wSum) / s.weight! + 1e-9)));
  }
  const exact = weighted.map((s) => (part * s.weight!) / wSum);
  const counts = exact.map((e) => Math.floor(e + 1e-9));
  let left = part - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - counts[i]! })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    counts[i]! += 1;
    left -= 1;
  }
  const size = fixedTotal + part;
  const out = new Map<string, MixTarget>();
  fixed.forEach((s) =>
    out.set(s.name, {
      name: s.name,
      available: s.available,
      target: fixedCount(s),
      targetShare: size ? fixedCount(s) / size : 0,
    }),
  );
  weighted.forEach((s, i) =>
    out.set(s.name, {
      name: s.name,
      available: s.available,
      target: counts[i]!,
      targetShare: size ? (part / size) * (s.weight! / wSum) : 0,
    }),
  );
  return sources.map((s) => out.get(s.name)!);
}

/** A stable pseudo-random rank of an id under a seed: the order of downsampling, repetition and the final shuffle. */
export function seededRank(seed: number, key: string): string {
  return createHash('sha256').update(`${seed}\u001f${key}`).digest('hex');
}

/**
 * The copies of one source's ids that make its target: the first `target` in seeded order when downsampling; when
 * upsampling every id once, then whole passes in a fresh seeded order, then the first of another pass.
 */
export function pickCopies(
  ids: string[],
  target: number,
  seed: number,
  source: string,
): { id: string; copy: number }[] {
  if (!ids.length || target <= 0) return [];
  const passOrder = (pass: number) =>
    [...ids].sort((a, b) =>
      seededRank(seed, `${source}\u001f${pass}\u001f${a}`) < seededRank(seed, `${source}\u001f${pass}\u001f${b}`)
        ? -1
        : 1,
    );
  const out: { id: string; copy: number }[] = [];
  for (let pass = 0; out.length < target; pass++) {
    for (const id of passOrder(pass)) {
      if (out.length >= target) break;
      out.push({ id, copy: pass });
    }
  }
  return out;
}
