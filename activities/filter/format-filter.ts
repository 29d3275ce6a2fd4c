import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { ArtifactRef, RejectRow, SampleRow } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { currentActivity } from '../activity-context';
import { AtomicJsonlWriter, pathOf, verifyRef, writeJsonAtomic, writeTextAtomic } from '../artifacts/store';
import { reasoningAndSummary } from '../text/think';
import { CardBuilder, renderCardMarkdown, type StepStats } from './card';
import { checkCompletion } from './completion';
import { resolveFilters, type FilterOptions, type FilterOptionsInput } from '../../schemas/filter-options';
import { buildDecontaminator, type Decontaminator } from './decontaminate';
import { Deduper } from './dedup';
import { DifficultyFilter, loadPassRates } from './difficulty';
import { formatAssistant, FormatStep } from './format';
import { LanguageFilter } from './language';
import { readJsonlLocated } from './jsonl';
import { LengthFilter, loadTokenCounter } from './length';
import { LimitsFilter } from './limits';
import { toMessages, toShareGpt, type SftRow } from './output';
import { RepetitionFilter } from './repetition';
import { confinePath } from '../security/worker-policy';
import { BUILTIN_TOKENIZERS } from '../security/spec-uses';
import type { Candidate, Verdict } from './types';
import { loadSourcePlans, type SourcePlan } from '../dataset/mixture';
import { mixSft, type MixResult } from './mix';
import { sourceFunnels, type SourceFunnel } from './source-funnel';
import { adaptiveSamplingSummary } from '../generate/sampling-summary';

export { formatAssistant } from './format';
export type { SftRow } from './output';

export interface FormatFilterInput {
  runDir: string;
  accepted: ArtifactRef;
  /** `RunSpec['filters']` as it is today, or the extended sections of schemas/filter-options.ts. */
  filters: RunSpec['filters'] | FilterOptionsInput;
  /** verify/pass-rates.jsonl (rejectSample's passRatesRef): needed by the difficulty filter. */
  passRates?: ArtifactRef;
  /** The run spec: copied into the dataset card; its evaluation benchmark is decontaminated against. */
  spec?: RunSpec;
}

export interface FormatFilterResult {
  samplesIn: number;
  kept: number;
  rejected: number;
  reasons: Record<string, number>;
  sftRef: ArtifactRef;
  rejectsRef: ArtifactRef;
  /** filter/dataset-card.json and .md. */
  cardRef: ArtifactRef;
  cardMarkdownRef: ArtifactRef;
  /** filter/sft.sharegpt.jsonl, when filters.output.sharegpt. */
  sharegptRef?: ArtifactRef;
  /** A mixture: the rows that survived the filters (before mixing), and each source's share of the SFT set. */
  mix?: { keptRef: ArtifactRef; sources: MixResult['sources'] };
}

interface Step {
  stats: StepStats;
  /** `at`: where the sample's row is in the accepted file (dedup reads kept rows back from there). */
  check: (c: Candidate, at: { offset: number; length: number }) => Verdict;
}

/** What near-dedup compares for a sample: the reasoning and the summary, without the template's tags. */
function nearAnswer(reasoning: string, summary: string): string {
  return `${reasoning}\n${summary}`;
}

async function buildSteps(
  input: FormatFilterInput,
  f: FilterOptions,
  card: CardBuilder,
  requireThinkOf: (s: SampleRow) => boolean,
  plans: Map<string, SourcePlan> | null,
) {
  const passRates = input.passRates ? await loadPassRates(input.passRates) : undefined;
  const difficulty = new DifficultyFilter(passRates, f.difficulty);
  const bench = input.spec?.evaluation?.benchmark;
  let decontaminator: Decontaminator | undefined;
  if (f.decontaminate.enabled) {
    decontaminator = await buildDecontaminator({
      ngram: f.decontaminate.ngram,
      minItemTokens: f.decontaminate.minItemTokens,
      benchmarks: f.decontaminate.benchmarks,
      arithmetic:
        f.decontaminate.evaluationBenchmark && bench
          ? { count: bench.count, seed: bench.seed, digits: bench.digits, ops: bench.ops }
          : undefined,
    });
  }
  const limits = new LimitsFilter(f.limits);
  const counter = await loadTokenCounter(f.length.tokenizer);
  const perSource = perSourceFilters(f, counter, plans);
  const language = perSource.language;
  const repetition = perSource.repetition;
  const length = perSource.length;
  const deduper = new Deduper({ exact: f.dedupExact, near: f.nearDedup });
  const ctx = currentActivity();
  for (const file of f.earlierDatasets)
    await deduper.addEarlier(file, (rows) => ctx?.heartbeat({ loadingEarlier: file, rows }));
  // Kept samples are read back from the accepted file by offset when a later one is a near-duplicate candidate.
  const source = deduper.addSource(pathOf(input.accepted), (row) => {
    const s = row as unknown as SampleRow;
    const fr = formatAssistant(s, requireThinkOf(s));
    if (!fr.ok) return null;
    const { reasoning, summary } = reasoningAndSummary(fr.text);
    return { prompt: s.prompt, answer: nearAnswer(reasoning, summary) };
  });
  const dedupOn = f.dedupExact || f.nearDedup.enabled;
  const decon = decontaminator;

  const steps: Step[] = [
    {
      stats: card.step('max_chars', true),
      check: (c) => {
        const maxChars = perSource.maxCharsOf(c.sample);
        return c.text.length > maxChars ? { reason: 'too_long', detail: `${c.text.length} chars > ${maxChars}` } : null;
      },
    },
    { stats: card.step('difficulty', difficulty.enabled), check: (c) => difficulty.check(c) },
    {
      stats: card.step('decontaminate', !!decon && decon.size > 0),
      check: (c) =>
        decon ? (decon.check(c.sample.prompt) ?? (f.decontaminate.checkResponse ? decon.check(c.text) : null)) : null,
    },
    {
      stats: card.step('language', f.language.enabled || sourceEnables(plans, 'language')),
      check: (c) => language.check(c),
    },
    {
      stats: card.step('repetition', f.repetition.enabled || sourceEnables(plans, 'repetition')),
      check: (c) => repetition.check(c),
    },
    { stats: card.step('limits', limits.enabled), check: (c) => limits.check(c) },
    { stats: card.step('length', true), check: (c) => length.check(c) },
    {
      stats: card.step('dedup', dedupOn),
      check: (c, at) =>
        dedupOn
          ? deduper.check(c.sample.id, c.sample.prompt, c.text, nearAnswer(c.reasoning, c.summary), { source, ...at })
          : null,
    },
  ];
  return { steps, counter, length, language, deduper, decontaminator, difficulty };
}

/**
 * Format and filter: repair what can be repaired into the <think> template, drop what cannot, then run the filters
 * in order (cheap first; dedup last, so only samples that are really kept enter its index) and write the SFT dataset,
 * the rejects with their reasons, and the dataset card. Streams: memory holds the indexes, not the samples.
 * Accounting: samplesIn = kept + rejected. Same input → same files (written atomically), so a retry simply redoes it.
 */
export async function formatFilter(input: FormatFilterInput): Promise<FormatFilterResult> {
  await verifyRef(input.accepted);
  let f: FilterOptions;
  try {
    f = resolveFilters(input.filters as FilterOptionsInput);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`Invalid filters: ${(err as Error).message}`, 'InvalidFilterConfig');
  }
  // Files the filters read must lie inside the worker's roots (checked before any is opened).
  if (!BUILTIN_TOKENIZERS.has(f.length.tokenizer))
    await confinePath({ field: 'filters.length.tokenizer', path: f.length.tokenizer, access: 'read' });
  for (const [i, p] of f.earlierDatasets.entries())
    await confinePath({ field: `filters.earlierDatasets.${i}`, path: p, access: 'read' });
  for (const [i, b] of f.decontaminate.benchmarks.entries())
    await confinePath({ field: `filters.decontaminate.benchmarks.${i}.path`, path: b.path, access: 'read' });
  const dir = path.join(input.runDir, 'filter');
  const card = new CardBuilder();
  const completion = card.step('completion', true);
  const format = card.step('format', true);
  const plans = await loadSourcePlans(input.runDir);
  const formatStep = thinkFormat(plans, f);
  const tSetup = performance.now();
  const built = await buildSteps(input, f, card, formatStep.requireThinkOf, plans).catch(
    (err: NodeJS.ErrnoException) => {
      // A benchmark file, earlier dataset or tokenizer named in the config that is not there will not appear on a retry.
      if (err.code === 'ENOENT' || /no tokenizer\.json/.test(err.message))
        throw ApplicationFailure.nonRetryable(`filters: ${err.message}`, 'InvalidFilterConfig');
      throw err;
    },
  );
  const setupMs = performance.now() - tSetup;
  // A mixture's filtered rows are mixed into sft.jsonl afterwards, by source weight.
  const sftOut = new AtomicJsonlWriter(path.join(dir, plans ? 'kept.jsonl' : 'sft.jsonl'));
  const rejectsOut = new AtomicJsonlWriter(path.join(dir, 'rejects.jsonl'));
  const sharegptOut =
    f.output.sharegpt && !plans ? new AtomicJsonlWriter(path.join(dir, 'sft.sharegpt.jsonl')) : undefined;
  const reasons: Record<string, number> = {};
  const ctx = currentActivity();
  let samplesIn = 0;
  const reject = async (s: SampleRow, step: StepStats, v: NonNullable<Verdict>) => {
    reasons[v.reason] = (reasons[v.reason] ?? 0) + 1;
    step.dropped += 1;
    step.reasons[v.reason] = (step.reasons[v.reason] ?? 0) + 1;
    const row: RejectRow = {
      id: s.id,
      stage: 'filter',
      reason: v.reason,
      detail: v.detail,
      row: { step: step.name, promptId: s.promptId },
      ...(s.source ? { source: s.source } : {}),
    };
    await rejectsOut.write(row);
  };
  try {
    sample: for await (const { row: s, offset, length } of readJsonlLocated<SampleRow>(pathOf(input.accepted))) {
      samplesIn += 1;
      if (samplesIn % 1000 === 0) ctx?.heartbeat({ filtered: samplesIn });
      card.input(s);
      completion.in += 1;
      const t0 = performance.now();
      const cv = checkCompletion(s, f.dropTruncated);
      completion.ms += performance.now() - t0;
      if (cv) {
        await reject(s, completion, cv);
        continue;
      }
      completion.out += 1;
      format.in += 1;
      const t1 = performance.now();
      const fr = formatStep.apply(s);
      format.ms += performance.now() - t1;
      if (!fr.candidate) {
        await reject(s, format, fr.verdict);
        continue;
      }
      format.out += 1;
      const c = fr.candidate;
      for (const step of built.steps) {
        step.stats.in += 1;
        const t0 = performance.now();
        const v = step.check(c, { offset, length });
        step.stats.ms += performance.now() - t0;
        if (v) {
          await reject(s, step.stats, v);
          continue sample;
        }
        step.stats.out += 1;
      }
      card.keep(s, built.length.last, built.language.lastScript, built.language.lastLanguage);
      const row: SftRow = { ...toMessages(s.id, s.prompt, c.text), ...(s.source ? { source: s.source } : {}) };
      await sftOut.write(row);
      if (sharegptOut) await sharegptOut.write(toShareGpt(row));
    }
  } catch (err) {
    await Promise.all([sftOut.abort(), rejectsOut.abort(), sharegptOut?.abort()]);
    throw err;
  } finally {
    built.deduper.close();
  }
  const keptRef = await sftOut.finish();
  const rejectsRef = await rejectsOut.finish();
  let sharegptRef = sharegptOut ? await sharegptOut.finish() : undefined;
  if (keptRef.count + rejectsRef.count !== samplesIn) {
    throw ApplicationFailure.nonRetryable(
      `filter accounting: ${samplesIn} in ≠ ${keptRef.count} kept + ${rejectsRef.count} rejected`,
      'AccountingMismatch',
    );
  }
  let sftRef = keptRef;
  let mixed: MixResult | undefined;
  let funnels: SourceFunnel[] | undefined;
  if (plans) {
    mixed = await mixSft({
      dir,
      kept: keptRef,
      plans: [...plans.values()],
      runDir: input.runDir,
      sharegpt: f.output.sharegpt,
    });
    sftRef = mixed.sftRef;
    sharegptRef = mixed.sharegptRef;
    funnels = await sourceFunnels(input.runDir, {
      accepted: input.accepted,
      filterRejects: rejectsRef,
      kept: keptRef,
      mix: mixed.sources,
    });
  }
  const adaptiveSampling = await adaptiveSamplingSummary(input.runDir);
  const dataset = card.build({
    title: `SFT dataset${input.spec?.name ? ` of run ${input.spec.name}` : ''}`,
    files: { sft: sftRef, rejects: rejectsRef, sharegpt: sharegptRef, accepted: input.accepted },
    counts: { in: samplesIn, kept: keptRef.count, rejected: rejectsRef.count },
    ...(mixed && funnels
      ? { mixture: { seed: mixed.seed, total: mixed.total, sftRows: sftRef.count, sources: funnels } }
      : {}),
    ...(adaptiveSampling ? { adaptiveSampling } : {}),
    reasons,
    tokenizer: { name: built.counter.name, exact: built.counter.exact },
    dedup: built.deduper.stats(),
    decontamination: built.decontaminator
      ? {
          ngram: f.decontaminate.ngram,
          checkResponse: f.decontaminate.checkResponse,
          benchmarks: built.decontaminator.benchmarks,
        }
      : { enabled: false },
    difficulty: built.difficulty.enabled
      ? {
          minPassRate: f.difficulty.minPassRate,
          maxPassRate: f.difficulty.maxPassRate,
          promptsWithoutPassRate: built.difficulty.unknown,
        }
      : { enabled: false, passRatesGiven: !!input.passRates },
    filters: f,
    spec: input.spec,
    timing: { setupMs: Math.round(setupMs), totalMs: Math.round(performance.now() - tSetup) },
  });
  const cardRef = await writeJsonAtomic(path.join(dir, 'dataset-card.json'), dataset);
  const cardMarkdownRef = await writeTextAtomic(path.join(dir, 'dataset-card.md'), renderCardMarkdown(dataset));
  return {
    samplesIn,
    kept: keptRef.count,
    rejected: rejectsRef.count,
    reasons,
    sftRef,
    rejectsRef,
    cardRef,
    cardMarkdownRef,
    ...(sharegptRef ? { sharegptRef } : {}),
    ...(mixed ? { mix: { keptRef, sources: mixed.sources } } : {}),
  };
}

function sourceEnables(plans: Map<string, SourcePlan> | null, filter: 'language' | 'repetition'): boolean {
  return [...(plans?.values() ?? [])].some((p) => p.filters?.[filter]?.enabled === true);
}

/**
 * The language, repetition and length filters of each source (the run's settings with the source's own over them),
 * behind one object per filter that sends each candidate to its source's instance and remembers the last one used
 * (the card reads its measurements).
 */
function perSourceFilters(
  f: FilterOptions,
  counter: Awaited<ReturnType<typeof loadTokenCounter>>,
  plans: Map<string, SourcePlan> | null,
) {
  type Set3 = { language: LanguageFilter; repetition: RepetitionFilter; length: LengthFilter; maxChars: number };
  const make = (o: FilterOptions): Set3 => ({
    language: new LanguageFilter(o.language),
    repetition: new RepetitionFilter(o.repetition),
    length: new LengthFilter(counter, o.length),
    maxChars: o.maxChars,
  });
  const global = make(f);
  const bySource = new Map<string, Set3>();
  for (const plan of plans?.values() ?? []) {
    const o = plan.filters;
    if (!o) continue;
    const merged = resolveFilters({
      ...(f as FilterOptionsInput),
      ...(o.maxChars !== undefined ? { maxChars: o.maxChars } : {}),
      language: { ...f.language, ...o.language },
      length: { ...f.length, ...o.length },
      repetition: { ...f.repetition, ...o.repetition },
    } as FilterOptionsInput);
    bySource.set(plan.name, make(merged));
  }
  const of = (s: SampleRow) => (s.source ? bySource.get(s.source) : undefined) ?? global;
  let lastSet = global;
  const use = (c: Candidate) => (lastSet = of(c.sample));
  return {
    maxCharsOf: (s: SampleRow) => of(s).maxChars,
    language: {
      check: (c: Candidate) => use(c).language.check(c),
      get lastScript() {
        return lastSet.language.lastScript;
      },
      get lastLanguage() {
        return lastSet.language.lastLanguage;
      },
    },
    repetition: { check: (c: Candidate) => use(c).repetition.check(c) },
    length: {
      check: (c: Candidate) => use(c).length.check(c),
      get last() {
        return lastSet.length.last;
      },
    },
  };
}

/**
 * The format step per source: a reasoning source needs its <think> block (think: required), a non-reasoning one
 * may not have one (none), or either (optional). A run without sources keeps filters.requireThink.
 */
function thinkFormat(plans: Map<string, SourcePlan> | null, f: FilterOptions) {
  const planOf = (s: SampleRow) => (plans && s.source ? plans.get(s.source) : undefined);
  const requireThinkOf = (s: SampleRow) => {
    const plan = planOf(s);
    return plan ? plan.think === 'required' : f.requireThink;
  };
  const strict = new FormatStep({ requireThink: true, format: f.format });
  const loose = new FormatStep({ requireThink: false, format: f.format });
  const global = new FormatStep({ requireThink: f.requireThink, format: f.format });
  return {
    requireThinkOf,
    apply(s: SampleRow): ReturnType<FormatStep['apply']> {
      const plan = planOf(s);
      if (!plan) return global.apply(s);
      const r = (plan.think === 'required' ? strict : loose).apply(s);
      if (r.candidate && plan.think === 'none' && r.candidate.reasoning.trim()) {
        return {
          candidate: null,
          verdict: {
            reason: 'unexpected_think',
            detail: `source ${plan.name} is answered without reasoning (think: none)`,
          },
        };
      }
      return r;
    },
  };
}
