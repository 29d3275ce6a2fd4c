import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { ArtifactRef } from '../../schemas/artifact';
import { AtomicJsonlWriter, pathOf, writeJsonAtomic } from '../artifacts/store';
import { loadSourcesFile, mixTargets, pickCopies, seededRank, type SourcePlan } from '../dataset/mixture';
import { readJsonlLocated } from './jsonl';
import { toShareGpt, type SftRow } from './output';

export interface SourceMix {
  name: string;
  kind: SourcePlan['kind'];
  weight?: number;
  maxSamples?: number;
  /** Rows of this source that survived the filters. */
  available: number;
  target: number;
  targetShare: number;
  /** Distinct rows taken, rows left out (downsampling), and extra copies (upsampling by repetition). */
  selected: number;
  dropped: number;
  repeats: number;
  /** Rows in the SFT set: selected + repeats. */
  final: number;
  achievedShare: number;
}

export interface MixResult {
  seed: number;
  total?: number;
  sources: SourceMix[];
  sftRef: ArtifactRef;
  sharegptRef?: ArtifactRef;
  mixRef: ArtifactRef;
}

/**
 * Mixes the filtered rows of every source into the SFT set: each source downsampled (seeded) or repeated to its
 * target, then the whole set shuffled by a seeded rank. A repeated row gets the id `<id>~<copy>`. Same kept file and
 * seed → the same sft.jsonl, byte for byte. Accounting per source: available = selected + dropped, final = selected + repeats.
 */
export async function mixSft(args: {
  dir: string;
  runDir: string;
  kept: ArtifactRef;
  plans: SourcePlan[];
  sharegpt: boolean;
}): Promise<MixResult> {
  const file = await loadSourcesFile(args.runDir);
  const seed = file?.mixing.seed ?? 0;
  const total = file?.mixing.total;
  const where = new Map<string, { offset: number; length: number }>();
  const idsBySource = new Map<string, string[]>(args.plans.map((p) => [p.name, []]));
  for await (const { row, offset, length } of readJsonlLocated<SftRow>(pathOf(args.kept))) {
    const ids = row.source ? idsBySource.get(row.source) : undefined;
    if (!ids)
      throw ApplicationFailure.nonRetryable(
        `mix: kept row ${row.id} has no known source (${JSON.stringify(row.source)})`,
        'AccountingMismatch',
      );
    ids.push(row.id);
    where.set(row.id, { offset, length });
  }
  const empty = args.plans.filter((p) => p.weight !== undefined && !idsBySource.get(p.name)!.length).map((p) => p.name);
  if (empty.length) {
    throw ApplicationFailure.nonRetryable(
      `mix: no row of source ${empty.join(', ')} survived verification and filtering, so its weight cannot be met (see filter/rejects.jsonl and verify/rejects.jsonl)`,
      'NoTrainingData',
    );
  }
  const targets = mixTargets(
    args.plans.map((p) => ({
      name: p.name,
      weight: p.weight,
      maxSamples: p.maxSamples,
      available: idsBySource.get(p.name)!.length,
    })),
    total,
  );
  const picks: { id: string; copy: number; rank: string }[] = [];
  const sources: SourceMix[] = targets.map((t, i) => {
    const plan = args.plans[i]!;
    const copies = pickCopies(idsBySource.get(t.name)!, t.target, seed, t.name);
    for (const c of copies) picks.push({ ...c, rank: seededRank(seed, `${c.id}\u001f${c.copy}`) });
    const selected = copies.filter((c) => c.copy === 0).length;
    return {
      name: t.name,
      kind: plan.kind,
      ...(plan.weight !== undefined ? { weight: plan.weight } : {}),
      ...(plan.maxSamples !== undefined ? { maxSamples: plan.maxSamples } : {}),
      available: t.available,
      target: t.target,
      targetShare: t.targetShare,
      selected,
      dropped: t.available - selected,
      repeats: copies.length - selected,
      final: copies.length,
      achievedShare: 0,
    };
  });
  const size = picks.length;
  for (const s of sources) s.achievedShare = size ? s.final / size : 0;
  picks.sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0));

  const sftOut = new AtomicJsonlWriter(path.join(args.dir, 'sft.jsonl'));
  const sharegptOut = args.sharegpt ? new AtomicJsonlWriter(path.join(args.dir, 'sft.sharegpt.jsonl')) : undefined;
  const fh = await fs.open(pathOf(args.kept), 'r');
  try {
    for (const p of picks) {
      const at = where.get(p.id)!;
      const buf = Buffer.alloc(at.length);
      await fh.read(buf, 0, at.length, at.offset);
      const row = JSON.parse(buf.toString('utf8')) as SftRow;
      const out = p.copy ? { ...row, id: `${row.id}~${p.copy}` } : row;
      await sftOut.write(out);
      if (sharegptOut) await sharegptOut.write(toShareGpt(out));
    }
  } catch (err) {
    await Promise.all([sftOut.abort(), sharegptOut?.abort()]);
    throw err;
  } finally {
    await fh.close();
  }
  const sftRef = await sftOut.finish();
  const sharegptRef = sharegptOut ? await sharegptOut.finish() : undefined;
  const mixRef = await writeJsonAtomic(path.join(args.dir, 'mix.json'), {
    seed,
    ...(total !== undefined ? { total } : {}),
    rows: sftRef.count,
    sources,
  });
  return {
    seed,
    ...(total !== undefined ? { total } : {}),
    sources,
    sftRef,
    ...(sharegptRef ? { sharegptRef } : {}),
    mixRef,
  };
}
