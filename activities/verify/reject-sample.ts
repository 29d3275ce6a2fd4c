import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ArtifactRef, RejectRow, SampleRow } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { currentActivity } from '../activity-context';
import { AtomicJsonlWriter, readJsonl, verifyRef } from '../artifacts/store';
import type { CodeOptions } from './code';
import type { JudgeConfig } from './judge';
import { JudgeError } from './judge';
import { apiKeyFor } from '../security/worker-policy';
import { SandboxUnavailableError } from './sandbox';
import { isAbortedGeneration } from '../generate/wasted-generation';
import { verifySample, verifySampleAsync, type SampleVerdict, type TaskType } from './verify-sample';

/**
 * The verifier section of the run spec as the verifier stage takes it: the task type, the judge and the code
 * sandbox's limits, and tie-breaks. `RunSpec['verifier']` is a valid value.
 */
export interface VerifierConfig {
  type: TaskType;
  /** Accepted samples kept per prompt (rejection sampling's k). */
  keepPerPrompt: number;
  /** Tie-break among correct samples: shorter (characters of answer + reasoning), fewer completion tokens, first. */
  prefer: 'shorter' | 'first' | 'fewer_tokens';
  ignoreCase?: boolean;
  judge?: JudgeConfig;
  code?: CodeOptions;
  /** Verifications in flight (code runs, judge calls). Default: code → half the CPUs, judge → 8, otherwise 1. */
  concurrency?: number;
}

export interface RejectSampleInput {
  runDir: string;
  samples: ArtifactRef;
  verifier: RunSpec['verifier'] | VerifierConfig;
}

export interface RejectSampleResult {
  samplesIn: number;
  accepted: number;
  rejected: number;
  acceptanceRate: number;
  reasons: Record<string, number>;
  prompts: number;
  /** Prompts with at least one correct sample. */
  promptsSolved: number;
  /** Verdicts taken from an earlier attempt's cache (resume) instead of being recomputed. */
  resumedVerdicts?: number;
  acceptedRef: ArtifactRef;
  rejectsRef: ArtifactRef;
  passRatesRef: ArtifactRef;
}

interface Candidate {
  id: string;
  length: number;
  tokens: number;
  order: number;
}

interface PromptTally {
  total: number;
  correct: Candidate[];
  verdicts: Record<string, number>;
}

/** A sample may carry its own task type (and tests) next to the SampleRow fields. */
type VerifiedSampleRow = SampleRow & { task?: TaskType; tests?: unknown };

/** Verdicts already computed are appended here as they complete, so a retried activity resumes where it stopped. */
const CACHE_FILE = 'verdicts.cache.jsonl';

function configKey(v: RejectSampleInput['verifier']): string {
  const c = v as VerifierConfig;
  const judge = c.judge
    ? {
        baseURL: c.judge.baseURL,
        model: c.judge.model,
        rubric: c.judge.rubric ?? null,
        reasoning: !!c.judge.includeReasoning,
      }
    : null;
  return createHash('sha256')
    .update(JSON.stringify({ type: c.type, ignoreCase: !!c.ignoreCase, judge, code: c.code ?? null }))
    .digest('hex')
    .slice(0, 16);
}

/** Reads the verdict cache (a torn last line is dropped and cut off) for this verifier config. */
async function loadCache(file: string, key: string): Promise<Map<string, SampleVerdict>> {
  const out = new Map<string, SampleVerdict>();
  let size: number;
  try {
    size = (await fsp.stat(file)).size;
  } catch {
    return out;
  }
  let goodBytes = 0;
  const rl = readline.createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of rl) {
    let row: { id: string; key: string; v: SampleVerdict } | null = null;
    try {
      row = JSON.parse(line);
    } catch {
      break; // torn write of a killed attempt: the rest is recomputed
    }
    goodBytes += Buffer.byteLength(line) + 1;
    if (row && row.key === key && typeof row.id === 'string' && row.v) out.set(row.id, row.v);
  }
  if (goodBytes < size) await fsp.truncate(file, Math.min(goodBytes, size));
  return out;
}

/**
 * One sample's verdict exactly as the stage reaches it (generation's adaptive sampling asks the same question before
 * the stage runs): the cheap checkers inline, code and judge (and a gold the checker cannot use) asynchronously.
 */
/** A generation cancelled as wasted is not an answer, whatever its cut-off text happens to contain. */
function abortedVerdict(row: SampleRow): SampleVerdict {
  return {
    correct: false,
    verdict: 'aborted',
    extracted: null,
    reason: `generation cancelled mid-stream (${row.finishReason}): ${row.aborted?.detail ?? ''}`,
  };
}

export async function verdictFor(row: SampleRow, cfg: VerifierConfig, signal?: AbortSignal): Promise<SampleVerdict> {
  // a row's own task type is read as the stage reads it
  const s = row as VerifiedSampleRow;
  if (isAbortedGeneration(row.finishReason)) return abortedVerdict(row);
  const opts = { type: cfg.type, ignoreCase: cfg.ignoreCase, judge: cfg.judge, code: cfg.code, signal };
  const task = s.task ?? cfg.type;
  if (task !== 'code' && task !== 'judge') {
    const v = verifySample(s, opts);
    if (!(v.verdict === 'unparseable_gold' && cfg.judge)) return v;
  }
  try {
    return await verifySampleAsync(s, opts);
  } catch (e) {
    throw asActivityFailure(e);
  }
}

function defaultConcurrency(c: VerifierConfig): number {
  if (c.concurrency) return c.concurrency;
  if (c.type === 'code') return Math.max(1, Math.floor(os.cpus().length / 2));
  if (c.type === 'judge' || c.judge) return 8;
  return 1;
}

/**
 * Rejection sampling: verify every teacher sample against its task (math, choice, exact, regex, code, judge), keep up
 * to k correct samples per prompt (tie-break by spec), and record each prompt's pass rate (its difficulty) with the
 * verdicts of its samples, and why each rejected sample was rejected.
 *
 * Verifications run `concurrency` at a time (code runs in the sandbox, judge calls); each verdict is appended to
 * verify/verdicts.cache.jsonl as it completes, so a retried attempt only verifies what is left. Failures of the
 * judge endpoint (4xx: non-retryable) or of the sandbox fail the activity; they are never recorded as verdicts.
 * Accounting: samplesIn = accepted + rejected.
 */
export async function rejectSample(input: RejectSampleInput): Promise<RejectSampleResult> {
  await verifyRef(input.samples);
  const cfg = input.verifier as VerifierConfig;
  // A judge key the worker's policy refuses fails the stage before any sample is verified.
  if (cfg.judge)
    apiKeyFor({ field: 'verifier.judge.apiKeyEnv', envName: cfg.judge.apiKeyEnv, baseURL: cfg.judge.baseURL });
  const dir = path.join(input.runDir, 'verify');
  await fsp.mkdir(dir, { recursive: true });
  const ctx = currentActivity();
  const signal = ctx?.cancellationSignal;
  const key = configKey(cfg);
  const cacheFile = path.join(dir, CACHE_FILE);
  const cached = await loadCache(cacheFile, key);
  const cacheOut = await fsp.open(cacheFile, 'a');

  // Pass 1: verdicts. Only ids, verdicts and lengths stay in memory; rows are re-read in pass 2.
  const verdicts = new Map<string, SampleVerdict>();
  const byPrompt = new Map<string, PromptTally>();
  const limit = defaultConcurrency(cfg);
  const inFlight = new Set<Promise<void>>();
  let failure: unknown = null;
  let order = 0;
  let done = 0;
  let resumed = 0;
  let pendingCache: string[] = [];
  let lastBeat = Date.now();
  const beat = () => ctx?.heartbeat({ verified: done, resumed });

  const record = (s: VerifiedSampleRow, idx: number, v: SampleVerdict) => {
    verdicts.set(s.id, v);
    const entry = byPrompt.get(s.promptId)!;
    entry.verdicts[v.verdict] = (entry.verdicts[v.verdict] ?? 0) + 1;
    if (v.correct)
      entry.correct.push({
        id: s.id,
        length: s.content.length + (s.reasoning?.length ?? 0),
        tokens: s.usage?.completionTokens ?? 0,
        order: idx,
      });
    done += 1;
    if (done % 500 === 0 || Date.now() - lastBeat > 5000) {
      lastBeat = Date.now();
      beat();
    }
  };
  const flushCache = async () => {
    if (!pendingCache.length) return;
    const chunk = pendingCache.join('');
    pendingCache = [];
    await cacheOut.write(chunk);
  };

  // a slow code run or judge call must not starve the heartbeat
  const beatTimer = ctx ? setInterval(beat, 5000) : undefined;
  try {
    for await (const s of readJsonl<VerifiedSampleRow>(input.samples)) {
      if (failure) break;
      if (signal?.aborted) throw new CancelledFailure(`verification cancelled after ${done} samples (verdicts cached)`);
      if (verdicts.has(s.id)) throw ApplicationFailure.nonRetryable(`duplicate sample id ${s.id}`, 'DuplicateSampleId');
      const idx = order++;
      if (!byPrompt.has(s.promptId)) byPrompt.set(s.promptId, { total: 0, correct: [], verdicts: {} });
      byPrompt.get(s.promptId)!.total += 1;
      if (isAbortedGeneration(s.finishReason)) {
        record(s, idx, abortedVerdict(s));
        continue;
      }
      const hit = cached.get(s.id);
      if (hit) {
        resumed += 1;
        record(s, idx, hit);
        continue;
      }
      const opts = { type: cfg.type, ignoreCase: cfg.ignoreCase, judge: cfg.judge, code: cfg.code, signal };
      const task = s.task ?? cfg.type;
      if (task !== 'code' && task !== 'judge') {
        // cheap checkers run inline and are not cached; only a gold they cannot use goes on to the judge
        const v = verifySample(s, opts);
        if (!(v.verdict === 'unparseable_gold' && cfg.judge)) {
          record(s, idx, v);
          continue;
        }
      }
      verdicts.set(s.id, null as unknown as SampleVerdict); // reserved (duplicate guard)
      const p = verifySampleAsync(s, opts)
        .then((v) => {
          record(s, idx, v);
          pendingCache.push(JSON.stringify({ id: s.id, key, v }) + '\n');
        })
        .catch((e) => {
          failure ??= e;
        });
      const tracked = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= limit) await Promise.race(inFlight);
      if (pendingCache.length >= 256) await flushCache();
    }
    await Promise.all(inFlight);
    await flushCache();
  } finally {
    if (beatTimer) clearInterval(beatTimer);
    await flushCache().catch(() => undefined);
    await cacheOut.close();
  }
  if (failure) throw asActivityFailure(failure);
  beat();

  const kept = new Set<string>();
  const rank = (a: Candidate, b: Candidate) => {
    if (cfg.prefer === 'shorter') return a.length - b.length || a.order - b.order;
    if (cfg.prefer === 'fewer_tokens') return a.tokens - b.tokens || a.length - b.length || a.order - b.order;
    return a.order - b.order;
  };
  for (const entry of byPrompt.values()) {
    const ranked = [...entry.correct].sort(rank);
    for (const c of ranked.slice(0, cfg.keepPerPrompt)) kept.add(c.id);
  }

  // Pass 2: write the accepted samples (with their verdict) and the rejects (with the reason).
  const acceptedOut = new AtomicJsonlWriter(path.join(dir, 'accepted.jsonl'));
  const rejectsOut = new AtomicJsonlWriter(path.join(dir, 'rejects.jsonl'));
  const reasons: Record<string, number> = {};
  let samplesIn = 0;
  for await (const s of readJsonl<VerifiedSampleRow>(input.samples)) {
    samplesIn += 1;
    const v = verdicts.get(s.id)!;
    const stored = {
      extracted: v.extracted,
      reason: v.reason,
      ...(v.task ? { task: v.task } : {}),
      ...(v.judge ? { judge: v.judge } : {}),
    };
    if (kept.has(s.id)) {
      await acceptedOut.write({ ...s, verdict: stored });
      continue;
    }
    const reason = v.correct ? 'over_keep_per_prompt' : v.verdict;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    const reject: RejectRow = {
      id: s.id,
      stage: 'verify',
      reason,
      detail: v.reason,
      ...(s.source ? { source: s.source } : {}),
      row: {
        promptId: s.promptId,
        extracted: v.extracted,
        gold: s.answer,
        ...(v.failure ? { failure: v.failure } : {}),
        ...(v.judge ? { judge: v.judge } : {}),
      },
    };
    await rejectsOut.write(reject);
  }
  const passRatesOut = new AtomicJsonlWriter(path.join(dir, 'pass-rates.jsonl'));
  let promptsSolved = 0;
  for (const [promptId, e] of byPrompt) {
    if (e.correct.length) promptsSolved += 1;
    await passRatesOut.write({
      promptId,
      samples: e.total,
      correct: e.correct.length,
      passRate: e.correct.length / e.total,
      verdicts: e.verdicts,
    });
  }
  const acceptedRef = await acceptedOut.finish();
  const rejectsRef = await rejectsOut.finish();
  if (acceptedRef.count + rejectsRef.count !== samplesIn) {
    throw ApplicationFailure.nonRetryable(
      `verify accounting: ${samplesIn} in ≠ ${acceptedRef.count} accepted + ${rejectsRef.count} rejected`,
      'AccountingMismatch',
    );
  }
  return {
    samplesIn,
    accepted: acceptedRef.count,
    rejected: rejectsRef.count,
    acceptanceRate: samplesIn ? acceptedRef.count / samplesIn : 0,
    reasons,
    prompts: byPrompt.size,
    promptsSolved,
    resumedVerdicts: resumed,
    acceptedRef,
    rejectsRef,
    passRatesRef: await passRatesOut.finish(),
  };
}

function asActivityFailure(e: unknown): Error {
  if (e instanceof JudgeError) {
    return e.retryable
      ? ApplicationFailure.retryable(e.message, 'JudgeUnavailable')
      : ApplicationFailure.nonRetryable(e.message, 'JudgeRequestRejected');
  }
  if (e instanceof SandboxUnavailableError) return ApplicationFailure.retryable(e.message, 'SandboxUnavailable');
  return e instanceof Error ? e : new Error(String(e));
}
