import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { ArtifactRef, RejectRow, SampleRow } from '../../schemas/artifact';
import { exists, pathOf, readJsonl } from '../artifacts/store';
import { layout } from '../artifacts/layout';
import { loadSourcesFile, type SourceCounts, type SourcePlan } from '../dataset/mixture';
import type { SftRow } from './output';
import type { SourceMix } from './mix';

interface StageCounts {
  in: number;
  kept: number;
  rejected: number;
  reasons: Record<string, number>;
}

/** One source's way through the run, stage by stage, counted from the stages' files. */
export interface SourceFunnel {
  name: string;
  kind: SourcePlan['kind'];
  verifier: SourcePlan['verifier'];
  think: SourcePlan['think'];
  responses: SourcePlan['responses'];
  prepare: SourceCounts;
  generate: { prompts: number; samples: number };
  verify: StageCounts;
  filter: StageCounts;
  mix: SourceMix;
}

const stage = (): StageCounts => ({ in: 0, kept: 0, rejected: 0, reasons: {} });

/**
 * Per-source accounting from the files on disk (prompts, samples, verdicts, filter output, mix), and the check that
 * every stage accounts for each source's rows: prepare in = kept + quarantined, verify in = generated samples =
 * accepted + rejected, filter in = accepted = kept + rejected, mix available = kept = selected + dropped. A mismatch
 * names the source and the stage (AccountingMismatch).
 */
export async function sourceFunnels(
  runDir: string,
  files: { accepted: ArtifactRef; filterRejects: ArtifactRef; kept: ArtifactRef; mix: SourceMix[] },
): Promise<SourceFunnel[]> {
  const sources = (await loadSourcesFile(runDir))?.sources ?? [];
  const out = new Map<string, SourceFunnel>();
  for (const s of sources) {
    const mix = files.mix.find((m) => m.name === s.name)!;
    out.set(s.name, {
      name: s.name,
      kind: s.kind,
      verifier: s.verifier,
      think: s.think,
      responses: s.responses,
      prepare: s.prepare,
      generate: { prompts: 0, samples: 0 },
      verify: stage(),
      filter: stage(),
      mix,
    });
  }
  const of = (name: string | undefined, what: string) => {
    const f = name ? out.get(name) : undefined;
    if (!f)
      throw ApplicationFailure.nonRetryable(
        `accounting: a row of ${what} has no known source (${JSON.stringify(name)})`,
        'AccountingMismatch',
      );
    return f;
  };
  const prompts = new Set<string>();
  for await (const s of readJsonl<SampleRow>(layout.samples(runDir))) {
    const f = of(s.source, 'generate/samples.jsonl');
    f.generate.samples += 1;
    if (!prompts.has(s.promptId)) {
      prompts.add(s.promptId);
      f.generate.prompts += 1;
    }
  }
  for await (const s of readJsonl<SampleRow>(pathOf(files.accepted)))
    of(s.source, 'verify/accepted.jsonl').verify.kept += 1;
  const verifyRejects = path.join(runDir, 'verify', 'rejects.jsonl');
  if (await exists(verifyRejects))
    for await (const r of readJsonl<RejectRow>(verifyRejects))
      count(of(r.source, 'verify/rejects.jsonl').verify, r.reason);
  for await (const r of readJsonl<SftRow>(pathOf(files.kept))) of(r.source, 'filter/kept.jsonl').filter.kept += 1;
  for await (const r of readJsonl<RejectRow>(pathOf(files.filterRejects)))
    count(of(r.source, 'filter/rejects.jsonl').filter, r.reason);

  const problems: string[] = [];
  for (const f of out.values()) {
    f.verify.in = f.generate.samples;
    f.filter.in = f.verify.kept;
    const p = f.prepare;
    if (p.in !== p.kept + p.quarantined)
      problems.push(`${f.name} prepare: ${p.in} in ≠ ${p.kept} kept + ${p.quarantined} quarantined`);
    if (f.verify.in !== f.verify.kept + f.verify.rejected)
      problems.push(
        `${f.name} verify: ${f.verify.in} generated ≠ ${f.verify.kept} accepted + ${f.verify.rejected} rejected`,
      );
    if (f.filter.in !== f.filter.kept + f.filter.rejected)
      problems.push(
        `${f.name} filter: ${f.filter.in} accepted ≠ ${f.filter.kept} kept + ${f.filter.rejected} rejected`,
      );
    if (
      f.mix.available !== f.filter.kept ||
      f.mix.available !== f.mix.selected + f.mix.dropped ||
      f.mix.final !== f.mix.selected + f.mix.repeats
    ) {
      problems.push(
        `${f.name} mix: ${f.filter.kept} filtered, ${f.mix.available} available = ${f.mix.selected} selected + ${f.mix.dropped} dropped, ${f.mix.final} final = selected + ${f.mix.repeats} repeats`,
      );
    }
  }
  if (problems.length)
    throw ApplicationFailure.nonRetryable(
      `per-source accounting does not add up: ${problems.join('; ')}`,
      'AccountingMismatch',
    );
  return [...out.values()];
}

function count(s: StageCounts, reason: string): void {
  s.rejected += 1;
  s.reasons[reason] = (s.reasons[reason] ?? 0) + 1;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The mixture's sections of the dataset card: target vs achieved mix, then each source's funnel. */
export function renderMixtureMarkdown(m: {
  seed: number;
  total?: number;
  sftRows: number;
  sources: SourceFunnel[];
}): string {
  const out: string[] = ['## Mixture', ''];
  out.push(
    `${m.sftRows} SFT rows from ${m.sources.length} sources (seed ${m.seed}${m.total !== undefined ? `, total ${m.total}` : ''}). Downsampling, repetition and the final order are seeded.`,
    '',
  );
  out.push(
    '| source | kind | weight / maxSamples | filtered | target | target share | achieved share | selected | dropped | repeated |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const s of m.sources) {
    const w =
      s.mix.weight !== undefined
        ? `weight ${s.mix.weight}`
        : s.mix.maxSamples !== undefined
          ? `max ${s.mix.maxSamples}`
          : 'all';
    out.push(
      `| ${s.name} | ${s.kind} | ${w} | ${s.mix.available} | ${s.mix.target} | ${pct(s.mix.targetShare)} | ${pct(s.mix.achievedShare)} | ${s.mix.selected} | ${s.mix.dropped} | ${s.mix.repeats} |`,
    );
  }
  out.push('');
  const repeated = m.sources.filter((s) => s.mix.repeats > 0);
  for (const s of repeated)
    out.push(
      `**Upsampled by repetition:** ${s.name} had ${s.mix.available} rows for a target of ${s.mix.target}: ${s.mix.repeats} rows are repeats (ids ending in ~1, ~2, …).`,
      '',
    );
  for (const s of m.sources) {
    out.push(
      `### Funnel of ${s.name} (${s.kind}; verifier ${s.verifier}; think ${s.think}; responses ${s.responses})`,
      '',
    );
    const reasons = (r: Record<string, number>) =>
      Object.entries(r)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ') || '–';
    out.push('| stage | in | kept | rejected | reasons |', '| --- | --- | --- | --- | --- |');
    out.push(`| prepare | ${s.prepare.in} | ${s.prepare.kept} | ${s.prepare.quarantined} | quarantined |`);
    out.push(`| generate | ${s.generate.prompts} prompts | ${s.generate.samples} samples | – | – |`);
    out.push(`| verify | ${s.verify.in} | ${s.verify.kept} | ${s.verify.rejected} | ${reasons(s.verify.reasons)} |`);
    out.push(`| filter | ${s.filter.in} | ${s.filter.kept} | ${s.filter.rejected} | ${reasons(s.filter.reasons)} |`);
    out.push(
      `| mix | ${s.mix.available} | ${s.mix.final} | ${s.mix.dropped} | downsampled ${s.mix.dropped}, repeated ${s.mix.repeats} |`,
      '',
    );
  }
  return out.join('\n');
}
