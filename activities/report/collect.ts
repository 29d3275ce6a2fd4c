/**
 * Gathers what the report shows from a run's summary (the workflow's RunSummary) and its artifacts on disk:
 * evaluate/summary.json and results.jsonl, verify/pass-rates.jsonl, the reject files, generate/samples.jsonl,
 * filter/sft.jsonl and finetune/train_report.json. Large files are streamed; only numbers are kept. A missing
 * artifact leaves its section out with a warning, never fails the report.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ArtifactRef } from '../../schemas/artifact';
import { currentActivity } from '../activity-context';
import { exists, pathOf, readJsonl } from '../artifacts/store';
import type { GateDecision } from '../../core/gate';
import type { DatasetCard } from '../filter/card';
import { countCarries } from '../dataset/arithmetic-task';
import {
  benchmarkMetrics,
  lengthStats,
  meanWithStderr,
  type BenchmarkMetrics,
  type Estimate,
  type ItemSamples,
  type LengthStats,
  type Outcomes,
  type SliceMetrics,
} from '../evaluate/metrics';

/** The part of the workflow's RunSummary the report reads (a RunSummary is one); everything is optional. */
export interface ReportSummary {
  runId?: string;
  name?: string;
  runDir?: string;
  counts?: Record<string, Record<string, number>>;
  acceptanceRate?: number | null;
  tokens?: { prompt: number; completion: number };
  fineTune?: { steps: number; finalLoss: number | null; resumedFromStep: number; modelDir: string };
  evaluation?: {
    benchmark: string;
    items: number;
    k: number;
    scores: { name: string; pass1: number; stderr: number }[];
  };
  artifacts?: Record<string, ArtifactRef>;
  /** The promotion gate's decision, when the run took one. */
  gate?: GateDecision & { pointer?: ArtifactRef | null };
}

export interface ModelAccuracy {
  name: string;
  pass1: Estimate;
  samples?: number;
  correct?: number;
  truncated?: number;
  consAtK?: Estimate;
  passAtK?: Record<string, Estimate>;
  answerChars?: LengthStats;
  byDifficulty?: Record<string, SliceMetrics>;
  verdicts?: Record<string, number>;
  /** Samples correct / incorrect / with no answer found. */
  outcomes?: Outcomes;
  /** Scored on other items than the benchmark (the teacher on the training prompts). */
  note?: string;
}

export interface BenchmarkAccuracy {
  benchmark: string;
  items: number;
  k: number;
  models: ModelAccuracy[];
}

export interface FunnelStage {
  stage: string;
  label: string;
  unit: string;
  count: number;
  /** Dropped between this stage and the next, by reason. */
  drops: { reason: string; count: number }[];
}

export interface LengthSeries {
  name: string;
  /** Where the lengths come from. */
  source: string;
  stats: LengthStats;
  values: number[];
}

export interface ReportData {
  runId: string;
  name: string;
  runDir: string;
  generatedAt: string;
  accuracy: BenchmarkAccuracy[];
  /** The teacher's pass@1 on the training prompts (rejection sampling), when the run has pass rates. */
  teacherTrain: (Estimate & { prompts: number }) | null;
  funnel: FunnelStage[];
  /** Stage accounting (in = kept + rejected + quarantined) as checked here. */
  accounting: { stage: string; ok: boolean; detail: string }[];
  lengths: { training: LengthSeries[]; evaluation: LengthSeries[] };
  loss: {
    points: { step: number; loss: number }[];
    smoothed: { step: number; loss: number }[];
    steps: number;
    finalLoss: number | null;
    source: string;
    facts: Record<string, unknown>;
  } | null;
  fineTune: ReportSummary['fineTune'] | null;
  tokens: ReportSummary['tokens'] | null;
  acceptanceRate: number | null;
  gate: ReportSummary['gate'] | null;
  artifacts: Record<string, string>;
  warnings: string[];
  /** A mixture run: each source's funnel and its target vs achieved share (from the dataset card). */
  mixture?: NonNullable<DatasetCard['mixture']>;
}

async function collectMixture(runDir: string): Promise<NonNullable<DatasetCard['mixture']> | undefined> {
  const file = path.join(runDir, 'filter', 'dataset-card.json');
  if (!(await exists(file))) return undefined;
  return (JSON.parse(await fs.readFile(file, 'utf8')) as DatasetCard).mixture;
}

function fileOf(summary: ReportSummary, key: string, runDir: string, ...rel: string[]): string {
  const ref = summary.artifacts?.[key];
  if (ref) {
    try {
      return pathOf(ref);
    } catch {
      /* not a file: URI: fall back to the layout */
    }
  }
  return path.join(runDir, ...rel);
}

async function readJsonFile<T>(file: string): Promise<T | null> {
  if (!(await exists(file))) return null;
  return JSON.parse(await fs.readFile(file, 'utf8')) as T;
}

/** Heartbeats while streaming big artifacts (every 5,000 rows): the activity runs under the run's heartbeat timeout. */
function rowTicker(what: string): () => void {
  const ctx = currentActivity();
  let n = 0;
  return () => {
    if (ctx && ++n % 5000 === 0) ctx.heartbeat({ report: what, rows: n });
  };
}

const MAX_LOSS_POINTS = 600;

/** Bucket means down to at most `max` points (keeps the shape, drops per-step noise beyond the chart's pixels). */
export function downsample(
  points: { step: number; loss: number }[],
  max = MAX_LOSS_POINTS,
): { step: number; loss: number }[] {
  if (points.length <= max) return points;
  const out: { step: number; loss: number }[] = [];
  const per = points.length / max;
  for (let b = 0; b < max; b++) {
    const chunk = points.slice(Math.floor(b * per), Math.floor((b + 1) * per));
    if (!chunk.length) continue;
    out.push({ step: chunk[chunk.length - 1]!.step, loss: chunk.reduce((s, p) => s + p.loss, 0) / chunk.length });
  }
  return out;
}

/** Exponential moving average with bias correction (as TensorBoard's smoothing), span ≈ n/25 steps. */
export function smooth(points: { step: number; loss: number }[]): { step: number; loss: number }[] {
  const span = Math.max(5, Math.round(points.length / 25));
  const a = 2 / (span + 1);
  let m = 0;
  return points.map((p, i) => {
    m = (1 - a) * m + a * p.loss;
    return { step: p.step, loss: m / (1 - (1 - a) ** (i + 1)) };
  });
}

interface EvalSummaryFile {
  benchmark?: string;
  items?: number;
  k?: number;
  scores?: {
    name: string;
    pass1: Estimate;
    samples?: number;
    correct?: number;
    truncated?: number;
    metrics?: BenchmarkMetrics;
    verdicts?: Record<string, number>;
    outcomes?: Outcomes;
  }[];
  benchmarks?: { name: string; items: number; scores: NonNullable<EvalSummaryFile['scores']> }[];
}

interface ResultRow {
  model: string;
  benchmark?: string;
  itemId: string;
  difficulty?: number;
  sampleIndex: number;
  response?: string;
  extracted?: string | null;
  correct: boolean;
  truncated?: boolean;
}

/** Rows of runs before difficulty was recorded: the builtin task's ids (`arith-47+85`) name the problem. */
function arithmeticDifficulty(id: string): number | undefined {
  const m = /^arith-(\d+)([+-])(\d+)$/.exec(id);
  return m ? countCarries(Number(m[1]), m[2] as '+' | '-', Number(m[3])) : undefined;
}

async function collectEvaluation(summary: ReportSummary, runDir: string, warnings: string[]) {
  const summaryFile = fileOf(summary, 'evalSummary', runDir, 'evaluate', 'summary.json');
  const resultsFile = fileOf(summary, 'evalResults', runDir, 'evaluate', 'results.jsonl');
  const file = await readJsonFile<EvalSummaryFile>(summaryFile);
  if (!file && !summary.evaluation) warnings.push(`no evaluation: ${summaryFile} is missing and the summary has none`);
  const primary = file?.benchmark ?? summary.evaluation?.benchmark ?? 'benchmark';
  const benches: { name: string; items: number; k: number; scores: NonNullable<EvalSummaryFile['scores']> }[] =
    file?.benchmarks
      ? file.benchmarks.map((b) => ({ name: b.name, items: b.items, k: file.k ?? 1, scores: b.scores }))
      : file?.scores
        ? [{ name: primary, items: file.items ?? 0, k: file.k ?? 1, scores: file.scores }]
        : summary.evaluation
          ? [
              {
                name: primary,
                items: summary.evaluation.items,
                k: summary.evaluation.k,
                scores: summary.evaluation.scores.map((s) => ({
                  name: s.name,
                  pass1: { mean: s.pass1, stderr: s.stderr },
                })),
              },
            ]
          : [];

  // One pass over results.jsonl: answer lengths, and the metrics an older summary.json lacks.
  const lengths = new Map<string, number[]>(); // `${benchmark}\u0000${model}`
  const outcomes = new Map<string, Outcomes>(); // the same key, counted from the rows (summaries before outcomes)
  const perItem = new Map<string, Map<string, ItemSamples>>();
  const needMetrics = benches.some((b) => b.scores.some((s) => !s.metrics));
  if (await exists(resultsFile)) {
    const tick = rowTicker('evaluate/results.jsonl');
    for await (const r of readJsonl<ResultRow>(resultsFile)) {
      tick();
      const bench = r.benchmark ?? primary;
      const key = `${bench}\u0000${r.model}`;
      const chars = (r.response ?? '').length;
      let l = lengths.get(key);
      if (!l) lengths.set(key, (l = []));
      l.push(chars);
      let o = outcomes.get(key);
      if (!o) outcomes.set(key, (o = { correct: 0, incorrect: 0, noAnswer: 0 }));
      if (r.correct) o.correct += 1;
      else if (r.extracted === null || r.extracted === undefined) o.noAnswer += 1;
      else o.incorrect += 1;
      if (needMetrics) {
        let items = perItem.get(key);
        if (!items) perItem.set(key, (items = new Map()));
        let it = items.get(r.itemId);
        if (!it)
          items.set(
            r.itemId,
            (it = { id: r.itemId, difficulty: r.difficulty ?? arithmeticDifficulty(r.itemId), samples: [] }),
          );
        it.samples.push({
          correct: !!r.correct,
          answer: r.extracted === null || r.extracted === undefined ? null : String(r.extracted).trim(),
          chars,
          truncated: !!r.truncated,
        });
      }
    }
  } else if (benches.length) warnings.push(`no per-sample results (${resultsFile}): answer-length histograms left out`);

  const accuracy: BenchmarkAccuracy[] = benches.map((b) => ({
    benchmark: b.name,
    items: b.items,
    k: b.k,
    models: b.scores.map((s): ModelAccuracy => {
      const key = `${b.name}\u0000${s.name}`;
      // Older runs: recomputed from the per-sample rows (cons@k votes on the extracted text as written).
      const m = s.metrics ?? (perItem.has(key) ? benchmarkMetrics([...perItem.get(key)!.values()]) : undefined);
      return {
        name: s.name,
        pass1: s.pass1,
        samples: s.samples ?? m?.samples,
        correct: s.correct,
        truncated: s.truncated ?? m?.truncated,
        ...(m
          ? { consAtK: m.consAtK, passAtK: m.passAtK, answerChars: m.answerChars, byDifficulty: m.byDifficulty }
          : {}),
        ...(s.verdicts ? { verdicts: s.verdicts } : {}),
        ...((s.outcomes ?? outcomes.get(key)) ? { outcomes: s.outcomes ?? outcomes.get(key) } : {}),
      };
    }),
  }));
  const evaluation: LengthSeries[] = [];
  if (benches[0]) {
    for (const s of benches[0].scores) {
      const values = lengths.get(`${benches[0].name}\u0000${s.name}`);
      if (values?.length)
        evaluation.push({ name: s.name, source: `${benches[0].name} responses`, stats: lengthStats(values), values });
    }
  }
  return { accuracy, evaluation };
}

async function reasonsOf(file: string): Promise<Record<string, number> | null> {
  if (!(await exists(file))) return null;
  const out: Record<string, number> = {};
  const tick = rowTicker(file);
  for await (const r of readJsonl<{ reason?: string }>(file)) {
    tick();
    out[r.reason ?? 'unknown'] = (out[r.reason ?? 'unknown'] ?? 0) + 1;
  }
  return out;
}

function prefixedCounts(c: Record<string, number> | undefined, prefix: string): Record<string, number> | null {
  if (!c) return null;
  const out = Object.fromEntries(
    Object.entries(c)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );
  return Object.keys(out).length ? out : null;
}

async function countLines(file: string): Promise<number | null> {
  if (!(await exists(file))) return null;
  let n = 0;
  const tick = rowTicker(file);
  for await (const _ of readJsonl(file)) {
    tick();
    n++;
  }
  return n;
}

const sortDrops = (r: Record<string, number> | null) =>
  Object.entries(r ?? {})
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, count]) => ({ reason, count }));

async function collectFunnel(summary: ReportSummary, runDir: string, warnings: string[]) {
  const c = summary.counts ?? {};
  const prep = c.prepare;
  const gen = c.generate;
  const ver = c.verify;
  const fil = c.filter;
  const promptsFile = fileOf(summary, 'prompts', runDir, 'prepare', 'prompts.jsonl');
  const quarantineFile = fileOf(summary, 'quarantine', runDir, 'prepare', 'quarantine.jsonl');
  const samplesFile = fileOf(summary, 'samples', runDir, 'generate', 'samples.jsonl');
  const acceptedFile = fileOf(summary, 'accepted', runDir, 'verify', 'accepted.jsonl');
  const verifyRejectsFile = fileOf(summary, 'verifyRejects', runDir, 'verify', 'rejects.jsonl');
  const sftFile = fileOf(summary, 'sft', runDir, 'filter', 'sft.jsonl');
  const filterRejectsFile = fileOf(summary, 'filterRejects', runDir, 'filter', 'rejects.jsonl');

  const kept = prep?.kept ?? (await countLines(promptsFile));
  const quarantined = prep?.quarantined ?? (await countLines(quarantineFile));
  const rowsIn = prep?.in ?? (kept !== null ? kept + (quarantined ?? 0) : null);
  const quarantineReasons = (await reasonsOf(quarantineFile)) ?? (quarantined ? { quarantined } : {});
  const samples = gen?.samples ?? (await countLines(samplesFile));
  const accepted = ver?.accepted ?? (await countLines(acceptedFile));
  const verifyReasons = prefixedCounts(ver, 'rejected.') ?? (await reasonsOf(verifyRejectsFile));
  const sft = fil?.kept ?? (await countLines(sftFile));
  const filterReasons = prefixedCounts(fil, 'rejected.') ?? (await reasonsOf(filterRejectsFile));

  const funnel: FunnelStage[] = [];
  const push = (
    stage: string,
    label: string,
    unit: string,
    count: number | null,
    drops: { reason: string; count: number }[],
  ) => {
    if (count === null) warnings.push(`funnel: no count for "${label}"`);
    else funnel.push({ stage, label, unit, count, drops });
  };
  push('prepare.in', 'dataset rows', 'rows', rowsIn, sortDrops(quarantineReasons));
  push('prepare.kept', 'prompts kept', 'prompts', kept, []);
  push('generate', 'teacher samples', 'samples', samples, sortDrops(verifyReasons));
  push('verify', 'verified, kept (≤ k per prompt)', 'samples', accepted, sortDrops(filterReasons));
  push('filter', 'SFT examples', 'examples', sft, []);

  const accounting: ReportData['accounting'] = [];
  const check = (
    stage: string,
    lhs: number | null | undefined,
    parts: (number | null | undefined)[],
    names: string,
  ) => {
    if (lhs === null || lhs === undefined || parts.some((p) => p === null || p === undefined)) return;
    const sum = (parts as number[]).reduce((a, b) => a + b, 0);
    accounting.push({
      stage,
      ok: sum === lhs,
      detail: `${lhs} = ${names} (${(parts as number[]).join(' + ')} = ${sum})`,
    });
  };
  check('prepare', rowsIn, [kept, quarantined], 'kept + quarantined');
  if (ver) {
    check('verify', ver.in, [ver.accepted, ver.rejected], 'accepted + rejected');
    if (verifyReasons) check('verify reasons', ver.rejected, Object.values(verifyReasons), 'Σ reasons');
  }
  if (fil) {
    check('filter', fil.in, [fil.kept, fil.rejected], 'kept + rejected');
    if (filterReasons) check('filter reasons', fil.rejected, Object.values(filterReasons), 'Σ reasons');
  }
  if (gen && ver) check('generate → verify', gen.samples, [ver.in], 'samples verified');
  if (ver && fil) check('verify → filter', ver.accepted, [fil.in], 'samples filtered');
  return { funnel, accounting };
}

async function collectTrainingLengths(summary: ReportSummary, runDir: string): Promise<LengthSeries[]> {
  const out: LengthSeries[] = [];
  const samplesFile = fileOf(summary, 'samples', runDir, 'generate', 'samples.jsonl');
  if (await exists(samplesFile)) {
    const values: number[] = [];
    const tick = rowTicker(samplesFile);
    for await (const r of readJsonl<{ content?: string; reasoning?: string }>(samplesFile)) {
      tick();
      values.push((r.content ?? '').length + (r.reasoning ?? '').length);
    }
    if (values.length)
      out.push({
        name: 'teacher samples',
        source: 'generate/samples.jsonl (content + reasoning)',
        stats: lengthStats(values),
        values,
      });
  }
  const sftFile = fileOf(summary, 'sft', runDir, 'filter', 'sft.jsonl');
  if (await exists(sftFile)) {
    const values: number[] = [];
    const tick = rowTicker(sftFile);
    for await (const r of readJsonl<{ messages?: { role: string; content: string }[] }>(sftFile)) {
      tick();
      const a = (r.messages ?? []).filter((m) => m.role === 'assistant').at(-1);
      if (a) values.push(a.content.length);
    }
    if (values.length)
      out.push({
        name: 'SFT examples',
        source: 'filter/sft.jsonl (assistant turn)',
        stats: lengthStats(values),
        values,
      });
  }
  return out;
}

async function collectLoss(summary: ReportSummary, runDir: string, warnings: string[]): Promise<ReportData['loss']> {
  const file = fileOf(summary, 'trainReport', runDir, 'finetune', 'train_report.json');
  const r = await readJsonFile<{
    loss_curve?: ({ step: number; loss: number } | [number, number, number])[];
    [k: string]: unknown;
  }>(file);
  if (!r) {
    warnings.push(`no training report (${file}): loss curve left out`);
    return null;
  }
  const raw = (r.loss_curve ?? [])
    .map((p) => (Array.isArray(p) ? { step: p[0], loss: p[1] } : { step: p.step, loss: p.loss }))
    .filter((p) => Number.isFinite(p.step) && Number.isFinite(p.loss));
  if (!raw.length) warnings.push(`training report ${file} has no loss_curve`);
  const facts: Record<string, unknown> = {};
  for (const k of [
    'steps',
    'total_steps',
    'resumed_from_step',
    'epochs',
    'examples',
    'params',
    'tokens',
    'loss_tokens',
    'tokens_per_s',
    'train_time_s',
    'device',
    'final_loss',
    'final_loss_avg10',
    'truncated',
    'skipped_too_long',
    'onnx_max_abs_diff',
  ]) {
    if (r[k] !== undefined) facts[k] = r[k];
  }
  if (r.model && typeof r.model === 'object') facts.model = r.model;
  Object.assign(facts, await objectiveFacts(r, path.dirname(file)));
  return {
    points: downsample(raw),
    smoothed: downsample(smooth(raw)),
    steps: raw.length ? raw[raw.length - 1]!.step : 0,
    finalLoss: typeof r.final_loss === 'number' ? r.final_loss : raw.length ? raw[raw.length - 1]!.loss : null,
    source: file,
    facts,
  };
}

/** What the student learned from: the objective, and for kd its settings and the soft targets' provenance and size. */
async function objectiveFacts(r: Record<string, unknown>, dir: string): Promise<Record<string, unknown>> {
  const facts: Record<string, unknown> = { objective: typeof r.objective === 'string' ? r.objective : 'sft' };
  const kd = r.kd as Record<string, unknown> | undefined;
  if (!kd) return facts;
  for (const k of ['temperature', 'alpha', 'top_k', 'tail', 'rows_with_targets', 'positions', 'mapped_fraction'])
    if (kd[k] !== undefined) facts[`kd_${k}`] = kd[k];
  const sidecar = await readJsonFile<{
    k?: number;
    generationTemperature?: number;
    bytesPerToken?: number;
    bytes?: number;
    dropped?: number;
  }>(path.join(dir, 'logprobs.json'));
  if (sidecar) {
    if (sidecar.k !== undefined) facts.logprobs_k = sidecar.k;
    if (sidecar.generationTemperature !== undefined) facts.generation_temperature = sidecar.generationTemperature;
    if (sidecar.bytesPerToken !== undefined)
      facts.sidecar_bytes_per_token = Math.round(sidecar.bytesPerToken * 10) / 10;
    if (sidecar.bytes !== undefined) facts.sidecar_bytes = sidecar.bytes;
    if (sidecar.dropped !== undefined) facts.sidecar_records_dropped = sidecar.dropped;
  }
  return facts;
}

async function collectTeacher(summary: ReportSummary, runDir: string): Promise<ReportData['teacherTrain']> {
  const file = fileOf(summary, 'passRates', runDir, 'verify', 'pass-rates.jsonl');
  if (!(await exists(file))) return null;
  const rates: number[] = [];
  const tick = rowTicker(file);
  for await (const r of readJsonl<{ passRate?: number; samples?: number; correct?: number }>(file)) {
    tick();
    const v = typeof r.passRate === 'number' ? r.passRate : r.samples ? (r.correct ?? 0) / r.samples : null;
    if (v !== null && Number.isFinite(v)) rates.push(v);
  }
  if (!rates.length) return null;
  return { ...meanWithStderr(rates), prompts: rates.length };
}

export async function collectReport(input: {
  runDir: string;
  summary: ReportSummary;
  generatedAt?: string;
}): Promise<ReportData> {
  const { runDir, summary } = input;
  const warnings: string[] = [];
  const [{ accuracy, evaluation }, { funnel, accounting }, training, loss, teacherTrain] = await Promise.all([
    collectEvaluation(summary, runDir, warnings),
    collectFunnel(summary, runDir, warnings),
    collectTrainingLengths(summary, runDir),
    collectLoss(summary, runDir, warnings),
    collectTeacher(summary, runDir),
  ]);
  const mixture = await collectMixture(runDir).catch((err: Error) => {
    warnings.push(`mixture: dataset card unreadable (${err.message})`);
    return undefined;
  });
  return {
    runId: summary.runId ?? path.basename(runDir),
    name: summary.name ?? summary.runId ?? path.basename(runDir),
    runDir,
    generatedAt: input.generatedAt ?? new Date().toISOString(),
    accuracy,
    teacherTrain,
    funnel,
    accounting,
    lengths: { training, evaluation },
    loss,
    fineTune: summary.fineTune ?? null,
    tokens: summary.tokens ?? null,
    acceptanceRate: summary.acceptanceRate ?? null,
    gate: summary.gate ?? null,
    artifacts: Object.fromEntries(Object.entries(summary.artifacts ?? {}).map(([k, v]) => [k, v.uri])),
    warnings,
    ...(mixture ? { mixture } : {}),
  };
}
