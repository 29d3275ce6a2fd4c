import * as path from 'node:path';
import type { ArtifactRef } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { currentActivity } from '../activity-context';
import { AtomicJsonlWriter, writeJsonAtomic } from '../artifacts/store';
import { rngFrom } from '../dataset/arithmetic-task';
import type { CodeOptions } from '../verify/code';
import { isEquivalent } from '../verify/math';
import { verifySample, verifySampleAsync, type SampleVerdict } from '../verify/verify-sample';
import { loadArithmetic, loadBenchmark, type Benchmark, type BenchmarkItem, type BenchmarkSource } from './benchmarks';
import {
  benchmarkMetrics,
  meanWithStderr,
  type BenchmarkMetrics,
  type Estimate,
  type ItemSamples,
  type Outcomes,
} from './metrics';
import { openEngine, type EvalModel } from './engines';
import { apiKeyFor, confinePath } from '../security/worker-policy';

export interface EvaluateInput {
  runDir: string;
  evaluation: RunSpec['evaluation'];
  /** Models to score on the same items, e.g. the baseline (before fine-tuning) and the student. */
  models: EvalModel[];
  maxLen: number;
  /**
   * Further benchmarks, scored after the spec's builtin one (which stays the primary: `benchmark`, `items` and
   * `scores` below are its). Local JSONL files (see benchmarks.ts).
   */
  benchmarks?: BenchmarkSource[];
  /** The pass@k values to report (default 1, 2, 4, …, k; values above k are dropped). */
  passKs?: number[];
  /** Sandbox limits for code benchmarks. */
  code?: CodeOptions;
}

export interface ModelScore {
  name: string;
  pass1: Estimate;
  samples: number;
  correct: number;
  truncated: number;
  answerChars: Estimate;
  /** pass@k, cons@k, length percentiles, by difficulty. */
  metrics?: BenchmarkMetrics;
  /** Samples by verdict (correct, incorrect, no_answer, unparseable_gold, prompt_too_long…). */
  verdicts?: Record<string, number>;
  /** Samples correct / incorrect / with no answer found (they add up to `samples`). */
  outcomes?: Outcomes;
}

export interface BenchmarkResult {
  name: string;
  task: Benchmark['task'];
  items: number;
  scores: ModelScore[];
}

export interface EvaluateResult {
  benchmark: string;
  items: number;
  k: number;
  seed: number;
  scores: ModelScore[];
  /** Every benchmark scored, the primary first. */
  benchmarks?: BenchmarkResult[];
  /** Which engine served each model (onnx, endpoint, llama.cpp, vllm). */
  engines?: Record<string, string>;
  results: ArtifactRef;
  summary: ArtifactRef;
}

/** A sample's answer as a vote key: equivalent math answers (1/2, 0.5, \frac12) share the first one's key. */
function voteKeys(task: Benchmark['task'], extracted: (string | null)[]): (string | null)[] {
  if (task !== 'math')
    return extracted.map((e) => (e === null ? null : task === 'code' ? e.replace(/\s+/g, ' ').trim() : e.trim()));
  const reps: string[] = [];
  return extracted.map((e) => {
    if (e === null) return null;
    const t = e.trim();
    for (const r of reps) {
      if (r === t) return r;
      let same = false;
      try {
        same = isEquivalent(t, r).equal;
      } catch {
        same = false;
      }
      if (same) return r;
    }
    reps.push(t);
    return t;
  });
}

async function verify(item: BenchmarkItem, response: string, code?: CodeOptions): Promise<SampleVerdict> {
  const sample = { content: response, answer: item.answer, prompt: item.prompt, task: item.task, tests: item.tests };
  return item.task === 'code' ? verifySampleAsync(sample, { type: 'code', code }) : verifySample(sample, item.task);
}

/**
 * Scores each model on the held-out benchmark (and any further ones) with the rejection-sampling verifiers:
 * k samples per item; pass@1 averaged over them, unbiased pass@k, cons@k, answer lengths, by difficulty.
 */
export function createEvaluate(opts: { threads?: number; cudaVisibleDevices?: string } = {}) {
  return async function evaluate(input: EvaluateInput): Promise<EvaluateResult> {
    const ev = input.evaluation;
    const b = ev.benchmark;
    // The worker's policy before any file is read or any endpoint asked: keys for their hosts, files inside its roots.
    for (const m of input.models)
      if ('endpoint' in m)
        apiKeyFor({
          field: `the apiKeyEnv of evaluation model ${m.name}`,
          envName: m.endpoint.apiKeyEnv,
          baseURL: m.endpoint.baseURL,
        });
    for (const [i, src] of (input.benchmarks ?? []).entries())
      if ('path' in src)
        await confinePath({ field: `evaluation.benchmarks.${i}.path`, path: src.path, access: 'read' });
    const benchmarks: Benchmark[] = [loadArithmetic({ seed: b.seed, count: b.count, digits: b.digits, ops: b.ops })];
    for (const src of input.benchmarks ?? []) benchmarks.push(await loadBenchmark(src));
    const names = new Set<string>();
    for (const bm of benchmarks) {
      if (names.has(bm.name)) throw new Error(`two benchmarks are named ${bm.name}: give one a name`);
      names.add(bm.name);
    }
    const dir = path.join(input.runDir, 'evaluate');
    const resultsOut = new AtomicJsonlWriter(path.join(dir, 'results.jsonl'));
    const ctx = currentActivity();
    const engines: Record<string, string> = {};
    const results: BenchmarkResult[] = benchmarks.map((bm) => ({
      name: bm.name,
      task: bm.task,
      items: bm.items.length,
      scores: [],
    }));
    // A batch on a slow engine (a CPU llama.cpp server, one sequence at a time) or a server still loading its model can
    // take longer than the heartbeat timeout: the heartbeat goes on a timer, carrying the latest progress.
    let progress: Record<string, unknown> = { phase: 'starting' };
    const beat = (p?: Record<string, unknown>) => {
      if (p) progress = p;
      ctx?.heartbeat(progress);
    };
    // Well inside the heartbeat timeout (a 5 s timeout with a 5 s ticker times out on a loaded machine).
    const timeoutMs = ctx?.info.heartbeatTimeoutMs ?? 0;
    const ticker = setInterval(beat, timeoutMs > 0 ? Math.max(250, Math.min(5000, Math.floor(timeoutMs / 3))) : 5000);
    try {
      for (const model of input.models) {
        beat({ model: model.name, phase: 'opening engine' });
        const engine = await openEngine(model, {
          maxLen: input.maxLen,
          threads: opts.threads,
          cudaVisibleDevices: opts.cudaVisibleDevices,
          log: (m) => ctx?.log.info(m),
          signal: ctx?.cancellationSignal,
        });
        engines[model.name] = engine.kind;
        try {
          for (const [bi, bm] of benchmarks.entries()) {
            const items = bm.items;
            const collected: ItemSamples[] = items.map((it) => ({ id: it.id, difficulty: it.difficulty, samples: [] }));
            const extracted: (string | null)[][] = items.map(() => []);
            const verdicts: Record<string, number> = {};
            const lengths: number[] = [];
            const tally: Outcomes = { correct: 0, incorrect: 0, noAnswer: 0 };
            for (let j = 0; j < ev.k; j++) {
              // One stream per sample index, the same for every model: all are asked with the same randomness. The
              // primary benchmark keeps the stream it always had, so its scores are comparable with earlier runs.
              const rng = bi === 0 ? rngFrom('evaluate', ev.seed, j) : rngFrom('evaluate', ev.seed, j, bm.name);
              for (let start = 0; start < items.length; start += engine.batch) {
                const idx = [...Array(Math.min(engine.batch, items.length - start)).keys()].map((i) => start + i);
                const outs = await engine.generate(
                  idx.map((i) => ({ id: items[i]!.id, prompt: items[i]!.prompt })),
                  {
                    temperature: ev.temperature,
                    topP: ev.top_p,
                    maxNewTokens: ev.maxNewTokens,
                    seed: ev.seed,
                    sampleIndex: j,
                    rng,
                  },
                );
                for (const [n, i] of idx.entries()) {
                  const item = items[i]!;
                  const out = outs[n]!;
                  const response = out.text;
                  const truncated = out.truncated;
                  const v: SampleVerdict = out.skipped
                    ? { correct: false, verdict: 'prompt_too_long', extracted: null, reason: out.skipped }
                    : await verify(item, response, input.code);
                  if (item.task === 'code') beat({ model: model.name, benchmark: bm.name, sample: j, item: i }); // sandbox runs take seconds each
                  verdicts[v.verdict] = (verdicts[v.verdict] ?? 0) + 1;
                  if (v.correct) tally.correct += 1;
                  else if (v.extracted === null) tally.noAnswer += 1;
                  else tally.incorrect += 1;
                  collected[i]!.samples.push({ correct: v.correct, answer: null, chars: response.length, truncated });
                  extracted[i]!.push(v.extracted);
                  lengths.push(response.length);
                  await resultsOut.write({
                    model: model.name,
                    engine: engine.kind,
                    benchmark: bm.name,
                    itemId: item.id,
                    ...(item.difficulty !== undefined ? { difficulty: item.difficulty } : {}),
                    sampleIndex: j,
                    seed: out.seed ?? ev.seed,
                    prompt: item.prompt,
                    gold: item.answer,
                    response,
                    extracted: v.extracted,
                    verdict: v.verdict,
                    correct: v.correct,
                    truncated,
                  });
                }
                beat({ model: model.name, benchmark: bm.name, sample: j, done: start + idx.length, ...tally });
              }
            }
            collected.forEach((it, i) => {
              const keys = voteKeys(bm.task, extracted[i]!);
              it.samples.forEach((s, n) => (s.answer = keys[n]!));
            });
            const metrics = benchmarkMetrics(collected, { ks: input.passKs });
            const flat = collected.flatMap((it) => it.samples);
            results[bi]!.scores.push({
              name: model.name,
              pass1: metrics.pass1,
              samples: flat.length,
              correct: flat.filter((s) => s.correct).length,
              truncated: metrics.truncated,
              answerChars: meanWithStderr(lengths),
              metrics,
              verdicts,
              outcomes: metrics.outcomes,
            });
          }
        } finally {
          await engine.close();
        }
      }
    } catch (err) {
      await resultsOut.abort();
      throw err;
    } finally {
      clearInterval(ticker);
    }
    const resultsRef = await resultsOut.finish();
    const primary = results[0]!;
    const summaryBody = {
      benchmark: primary.name,
      items: primary.items,
      k: ev.k,
      seed: ev.seed,
      temperature: ev.temperature,
      top_p: ev.top_p,
      scores: primary.scores,
      benchmarks: results,
      engines,
    };
    const summary = await writeJsonAtomic(path.join(dir, 'summary.json'), summaryBody);
    return {
      benchmark: primary.name,
      items: primary.items,
      k: ev.k,
      seed: ev.seed,
      scores: primary.scores,
      benchmarks: results,
      engines,
      results: resultsRef,
      summary,
    };
  };
}
