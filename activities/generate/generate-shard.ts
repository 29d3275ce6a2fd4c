import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Context } from '@temporalio/activity';
import { currentActivity } from '../activity-context';
import { recordCost, recordSamples } from '../metrics';
import { costUSD } from '../../core/cost';
import type { ArtifactRef, PromptRow, SampleRow } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { ApplicationFailure } from '@temporalio/common';
import { exists, readJsonl, refOfFile, writeJsonlAtomic } from '../artifacts/store';
import { layout } from '../artifacts/layout';
import { createTeacherClient, requireLogprobs, type TeacherAnswer } from './teacher-client';
import { encodeSampleLogprobs } from './logprobs-sidecar';
import { idsOf, writeAlignedSidecar } from './logprobs-files';
import { runShardBatch } from './batch-shard';
import { generationConfigHash, promptSeed, sampleId } from './sample-ids';
import { mapWithConcurrency } from './concurrency';
import { apiKeyFor, confinePath } from '../security/worker-policy';
import {
  attemptFileFor,
  attemptFiles,
  AttemptWriter,
  commitShard,
  indexAttempts,
  readIndexedLine,
  removeAttemptFiles,
  type AttemptIndex,
  type ExpectedSample,
} from './shard-attempts';
import {
  adaptivePlanOf,
  roundOf,
  sampleNextRound,
  samplePromptAdaptively,
  stopRecordOf,
  type AdaptivePromptIO,
  type StopRecord,
} from './adaptive-sampling';
import { sampleInBudgetedWaves } from './adaptive-budget';
import { adaptiveTallyOf, emptyTally, existingSample, tallyOf, toSampleRow, type ShardTally } from './sample-rows';
import { sourcePlansOf } from './prompt-plans';
import { verdictFor, type VerifierConfig } from '../verify/reject-sample';

export type { AdaptiveTally, ShardTally } from './sample-rows';

export interface GenerateShardInput {
  runDir: string;
  shardIndex: number;
  teacher: RunSpec['teacher'];
  sampling: RunSpec['sampling'];
  /** Needed (only) with sampling.adaptive: samples are verified as they arrive, by the reject-sample stage's verifier. */
  verifier?: RunSpec['verifier'] | VerifierConfig;
  /** With sampling.adaptive: the shard's share of teacher.budgetUSD and the run's cost per sample so far. */
  budget?: { shareUSD: number; usdPerSample?: number };
}

export interface GenerateShardResult extends ShardTally {
  shardIndex: number;
  samplesRef: ArtifactRef;
}

/** Asking again for choices the endpoint did not return (some servers cap n) before giving up on the attempt. */
const MAX_TOP_UPS = 4;

/**
 * Generates the teacher's samples for one shard of prompts, exactly once per sample id.
 *
 * Each attempt appends the samples of each completed prompt to an attempt file of its own, after reading what every
 * earlier (or still running) attempt of the shard has written: a retried attempt (after a crash, a lost worker or a
 * timeout) asks only for what is missing. Two attempts may run at once (one that outlived its heartbeat timeout and
 * its retry): they never write to one file, and the shard is committed once, from all attempt files by sample id, so
 * neither a duplicate nor a line cut by another writer can reach it (see shard-attempts.ts). A committed shard is
 * never rewritten; an attempt that finds it committed by another stops asking the teacher and reports it as it is.
 */
export async function generateShard(input: GenerateShardInput): Promise<GenerateShardResult> {
  // A generation workflow can be started on its own, with any runDir and teacher: both are checked against the
  // worker's policy before anything is read or asked.
  await confinePath({ field: 'runDir', path: input.runDir, access: 'write' });
  apiKeyFor({ field: 'teacher.apiKeyEnv', envName: input.teacher.apiKeyEnv, baseURL: input.teacher.baseURL });
  const ctx = currentActivity();
  let samples = 0;
  const beat = (written?: number) => {
    if (written !== undefined) samples = written;
    ctx?.heartbeat({ shardIndex: input.shardIndex, samples });
  };
  // Heartbeat on a timer, not only when a prompt completes, and from the start to the end: a teacher slower per
  // request than the heartbeat timeout, or attempt files of gigabytes to read at the start and to commit at the end,
  // must not time the attempt out (and throw away the requests in flight). Hung requests are bounded by
  // teacher.requestTimeoutSeconds; the SDK throttles what reaches the server.
  const ticker = ctx ? setInterval(beat, heartbeatIntervalMs(ctx.info.heartbeatTimeoutMs)) : undefined;
  ticker?.unref();
  try {
    return await generateShardSamples(input, ctx, beat);
  } finally {
    clearInterval(ticker);
  }
}

async function generateShardSamples(
  input: GenerateShardInput,
  ctx: Context | undefined,
  beat: (samples: number) => void,
): Promise<GenerateShardResult> {
  const final = layout.shardSamples(input.runDir, input.shardIndex);
  // a crash between the commit of the shard and the removal of the attempt files leaves the latter behind
  if (await exists(final))
    return input.sampling.adaptive
      ? adaptiveCommitted(input, final, { requests: 0 })
      : committedShard(input, final, { requests: 0 });
  await fs.mkdir(path.dirname(final), { recursive: true });
  if (input.sampling.adaptive) return generateAdaptively(input, ctx, beat, final);
  const configHash = generationConfigHash(input);
  const teacher = createTeacherClient(input.teacher, input.sampling);
  const planFor = await sourcePlansOf(input, {
    n: input.sampling.n,
    configHash,
    sampling: input.sampling,
    teacher,
    existing: false,
  });

  const prompts: PromptRow[] = [];
  for await (const p of readJsonl<PromptRow>(layout.shardPrompts(input.runDir, input.shardIndex))) prompts.push(p);
  const expected = new Map<string, ExpectedSample>();
  prompts.forEach((p, position) => {
    const { n, configHash } = planFor(p);
    for (let i = 0; i < n; i++) expected.set(sampleId(p.id, i, configHash), { position, sampleIndex: i });
  });

  const recovered = await indexAttempts(final, expected);
  await recovered.close();
  reportUnusable(ctx, final, recovered);
  const written = new Set(recovered.samples.keys());
  beat(written.size);
  const tally: ShardTally = {
    ...emptyTally(),
    prompts: prompts.length,
    samples: written.size,
    resumedSamples: written.size,
  };
  tally.promptTokens = recovered.promptTokens;
  tally.completionTokens = recovered.completionTokens;

  const out = await AttemptWriter.create(attemptFileFor(final, ctx?.info.attempt ?? 1));
  // The teacher's top-k logprobs go to a sidecar attempt file paired with the samples' one (same name after the
  // shard's): a sample line's frame is always in its pair, written before it.
  const lpOut = input.sampling.logprobs
    ? await AttemptWriter.create(sidecarPartner(input, final, out.file)).catch(async (err) => {
        await out.close();
        throw err;
      })
    : undefined;
  // Set once another attempt has committed the shard: nothing more is asked of the teacher.
  let overtaken = false;
  /**
   * Writes the prompt's missing samples. `prefetched` is an answer already in hand (from a batch) that stands for
   * the first request. The first two requests ask for all n with the prompt's fixed seed, so a redone prompt (or
   * one whose reply came back short once) gets the same samples a fault-free run would; only the missing indices
   * are written. After that the endpoint evidently caps n, and the missing samples are asked for with fresh seeds.
   */
  const fillPrompt = async (p: PromptRow, prefetched?: TeacherAnswer) => {
    const { n, configHash, sampling, teacher, existing } = planFor(p);
    const missing = new Set<number>();
    for (let i = 0; i < n; i++) if (!written.has(sampleId(p.id, i, configHash))) missing.add(i);
    if (!missing.size || overtaken || (overtaken = await exists(final))) return;
    const rows: SampleRow[] = [];
    const frames = new Map<string, Buffer>();
    // A source that reuses the responses in its data: its one sample is that response, and the teacher is not asked.
    if (existing) rows.push(existingSample(p, configHash, sampling));
    if (existing) missing.clear();
    for (let attempt = 0; missing.size && attempt <= MAX_TOP_UPS; attempt++) {
      const full = attempt < 2;
      const want = full ? n : missing.size;
      const answer =
        attempt === 0 && prefetched
          ? prefetched
          : await teacher.complete(
              { prompt: p.prompt, n: want, seed: promptSeed(sampling.seed, p.id, full ? 0 : attempt) },
              ctx?.cancellationSignal,
            );
      if (input.sampling.logprobs && attempt === 0 && prefetched)
        requireLogprobs(answer, input.teacher, input.sampling.logprobs);
      if (!(attempt === 0 && prefetched)) tally.requests += answer.httpRequests ?? 1;
      tally.promptTokens += answer.usage.promptTokens;
      tally.completionTokens += answer.usage.completionTokens;
      const order = [...missing];
      answer.choices.forEach((choice, k) => {
        const index = full ? choice.index : order[k];
        if (index === undefined || !missing.has(index)) return;
        missing.delete(index);
        const row = toSampleRow(p, index, k, configHash, choice, answer, sampling);
        rows.push(row);
        if (choice.logprobs) frames.set(row.id, encodeSampleLogprobs({ id: row.id, tokens: choice.logprobs }));
      });
    }
    if (missing.size) {
      throw new Error(
        `Teacher ${input.teacher.model} at ${input.teacher.baseURL} returned fewer choices than n=${n} for prompt ${p.id} after ${MAX_TOP_UPS} top-up requests`,
      );
    }
    rows.sort((a, b) => a.sampleIndex - b.sampleIndex);
    if (lpOut) await lpOut.append(Buffer.concat(rows.map((r) => frames.get(r.id)!)));
    // One append per prompt, whole: a kill leaves at most one torn line, at the end, which readers leave alone.
    await out.append(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    for (const r of rows) written.add(r.id);
    recordWritten(ctx, rows, input.teacher);
    tally.samples = written.size;
    beat(written.size);
  };
  try {
    const pending = prompts.filter((p) => {
      const { n, configHash } = planFor(p);
      return Array.from({ length: n }, (_, i) => sampleId(p.id, i, configHash)).some((id) => !written.has(id));
    });
    if (input.teacher.mode === 'batch' && pending.length && !pending.some((p) => p.source)) {
      const answers = await runShardBatch({
        ...input,
        configHash,
        prompts: pending,
        client: teacher.openai,
        signal: ctx?.cancellationSignal,
        heartbeat: (d) => ctx?.heartbeat({ shardIndex: input.shardIndex, samples: written.size, ...d }),
      });
      tally.batchRequests = answers.size;
      // Prompts the batch did not answer (failed lines) go online, like top-ups.
      await mapWithConcurrency(pending, input.teacher.concurrency, (p) => fillPrompt(p, answers.get(p.id)));
    } else {
      await mapWithConcurrency(pending, input.teacher.concurrency, (p) => fillPrompt(p));
    }
    await lpOut?.sync();
    await out.sync();
  } finally {
    await out.close();
    await lpOut?.close();
  }
  const committed = !overtaken && (await commitFromAttempts(input, final, expected));
  if (!committed) {
    const own = { requests: tally.requests, resumedSamples: tally.resumedSamples };
    return committedShard(
      input,
      final,
      tally.batchRequests === undefined ? own : { ...own, batchRequests: tally.batchRequests },
    );
  }
  await removeShardAttempts(input, final);
  tally.samples = written.size;
  // Cancelled generations are counted from the committed rows, the same way whichever attempt wrote them.
  const aborted = input.sampling.abortWasted ? (await tallyOf(final)).aborted : undefined;
  return {
    shardIndex: input.shardIndex,
    samplesRef: await refOfFile(final),
    ...tally,
    ...(aborted ? { aborted } : {}),
  };
}

/**
 * Commits the shard from every attempt file, unless another attempt has. Returns whether this attempt committed it.
 * Everything expected must be there: this attempt wrote what was missing when it started, and no attempt file is
 * removed before the shard exists.
 */
async function commitFromAttempts(
  input: GenerateShardInput,
  final: string,
  expected: ReadonlyMap<string, ExpectedSample>,
): Promise<boolean> {
  if (await exists(final)) return false;
  const index = await indexAttempts(final, expected);
  try {
    if (index.samples.size < expected.size) {
      if (index.vanished || (await exists(final))) return false;
      throw new Error(
        `${expected.size - index.samples.size} of the ${expected.size} samples of ${final} are missing from its attempt files after generation`,
      );
    }
    // The sidecar goes down first, from the same index as the samples: a committed shard always has its sidecar.
    if (input.sampling.logprobs) await writeShardSidecar(input, final, index);
    return await commitShard(final, index);
  } finally {
    await index.close();
  }
}

/**
 * The result for a shard that is committed (by an earlier attempt, or by one running beside this one): its counts
 * are those of the file, which is never rewritten; the requests are this attempt's own.
 */
async function committedShard(
  input: GenerateShardInput,
  final: string,
  own: Partial<ShardTally>,
): Promise<GenerateShardResult> {
  const shardIndex = input.shardIndex;
  // A shard committed by a version that wrote the sidecar after the samples may lack it: made from the attempt files.
  if (input.sampling.logprobs && !(await exists(layout.shardLogprobs(input.runDir, shardIndex))))
    await rebuildSidecar(input, final);
  await removeShardAttempts(input, final);
  const tally = await tallyOf(final);
  return { shardIndex, samplesRef: await refOfFile(final), ...tally, resumedSamples: tally.samples, ...own };
}

/** The sidecar attempt file that pairs with a samples attempt file (or with the shared `.partial`). */
function sidecarPartner(input: GenerateShardInput, final: string, samplesFile: string): string {
  return layout.shardLogprobs(input.runDir, input.shardIndex) + samplesFile.slice(final.length);
}

/** One frame per committed sample, in the shard's order, each from the attempt file its sample line comes from. */
async function writeShardSidecar(input: GenerateShardInput, final: string, index: AttemptIndex): Promise<void> {
  const lines = [...index.samples.entries()].sort(
    ([, a], [, b]) => a.position - b.position || a.sampleIndex - b.sampleIndex,
  );
  const sources = index.files.map((f) => sidecarPartner(input, final, f));
  await writeAlignedSidecar(
    layout.shardLogprobs(input.runDir, input.shardIndex),
    lines.map(([id]) => id),
    sources,
    { tolerateTornTail: true, sourceOf: (id) => index.samples.get(id)?.source },
  );
}

async function rebuildSidecar(input: GenerateShardInput, final: string): Promise<void> {
  const sources = await attemptFiles(layout.shardLogprobs(input.runDir, input.shardIndex));
  await writeAlignedSidecar(layout.shardLogprobs(input.runDir, input.shardIndex), await idsOf(final), sources, {
    tolerateTornTail: true,
  });
}

/** A committed shard's attempt files go, its sidecar's with them (only once the sidecar exists). */
async function removeShardAttempts(input: GenerateShardInput, final: string): Promise<void> {
  await removeAttemptFiles(final);
  if (input.sampling.logprobs) await removeAttemptFiles(layout.shardLogprobs(input.runDir, input.shardIndex));
}

/** Unusable lines in attempt files are skipped (an unreadable sample is generated again); a garbling disk is news. */
function reportUnusable(ctx: Context | undefined, final: string, index: AttemptIndex): void {
  if (index.corrupt || index.foreign) {
    ctx?.log.warn(
      `attempt files of ${final}: skipped ${index.corrupt} unreadable lines (generated again) and ${index.foreign} samples of another generation config`,
    );
  }
}

/** The metrics of samples written: their count, tokens and cost. */
function recordWritten(ctx: Context | undefined, rows: SampleRow[], teacher: RunSpec['teacher']): void {
  const prompt = rows.reduce((t, r) => t + r.usage.promptTokens, 0);
  const completion = rows.reduce((t, r) => t + r.usage.completionTokens, 0);
  recordSamples(ctx, rows.length, { prompt, completion }, teacher.model);
  recordCost(ctx, costUSD({ promptTokens: prompt, completionTokens: completion }, teacher.pricing), teacher.model);
}

/** A heartbeat a few times per heartbeat timeout (at most every 2 s): the SDK sends at most one per 0.8 × timeout. */
export function heartbeatIntervalMs(heartbeatTimeoutMs: number | undefined): number {
  if (!heartbeatTimeoutMs) return 2000;
  return Math.max(100, Math.min(2000, Math.floor(heartbeatTimeoutMs / 4)));
}

/** Where an adaptive shard's per-prompt sampling account goes (beside the shard, written before it is committed). */
export function shardSamplingFile(final: string): string {
  return final.replace(/\.jsonl$/, '.sampling.jsonl');
}

/**
 * Adaptive sampling of a shard: each prompt in rounds, each round verified as it returns, until it stops (see
 * adaptive-sampling.ts). The attempt files hold the samples and, per stopped prompt, a stop record naming how many
 * were drawn: the shard commits exactly indices 0..drawn-1 of every prompt, from all attempt files by sample id, as
 * the fixed-n path does. A retried attempt rebuilds each unstopped prompt's state from the samples on disk.
 */
async function generateAdaptively(
  input: GenerateShardInput,
  ctx: Context | undefined,
  beat: (samples: number) => void,
  final: string,
): Promise<GenerateShardResult> {
  if (!input.verifier)
    throw ApplicationFailure.nonRetryable(
      "sampling.adaptive needs the run's verifier in the generate shard input",
      'AdaptiveWithoutVerifier',
    );
  if (input.budget && !input.teacher.pricing)
    throw ApplicationFailure.nonRetryable(
      'a budgeted adaptive shard needs teacher.pricing to price its rounds',
      'BudgetWithoutPricing',
    );
  const cfg = input.verifier as VerifierConfig;
  const plan = adaptivePlanOf(input.sampling.adaptive!, cfg.keepPerPrompt);
  const configHash = generationConfigHash(input);
  const teacher = createTeacherClient(input.teacher, input.sampling);
  const prompts: PromptRow[] = [];
  for await (const p of readJsonl<PromptRow>(layout.shardPrompts(input.runDir, input.shardIndex))) prompts.push(p);
  const possible = new Map<string, ExpectedSample>();
  prompts.forEach((p, position) => {
    for (let i = 0; i < plan.maxSamples; i++) possible.set(sampleId(p.id, i, configHash), { position, sampleIndex: i });
  });
  const stopKey = (promptId: string) => `${promptId}@${configHash}`;

  const recovered = await indexAttempts(final, possible);
  const tally: ShardTally = {
    ...emptyTally(),
    prompts: prompts.length,
    samples: recovered.samples.size,
    resumedSamples: recovered.samples.size,
  };
  tally.promptTokens = recovered.promptTokens;
  tally.completionTokens = recovered.completionTokens;
  const stops = new Map<string, StopRecord>();
  for (const p of prompts) {
    const s = recovered.stops.get(stopKey(p.id));
    if (s) stops.set(p.id, s);
  }
  let written = recovered.samples.size;
  beat(written);
  let overtaken = false;
  const out = await AttemptWriter.create(attemptFileFor(final, ctx?.info.attempt ?? 1)).catch(async (err) => {
    await recovered.close();
    throw err;
  });
  const lpOut = input.sampling.logprobs
    ? await AttemptWriter.create(sidecarPartner(input, final, out.file)).catch(async (err) => {
        await out.close();
        await recovered.close();
        throw err;
      })
    : undefined;
  const frames = new Map<string, Buffer>();

  const ioFor = (p: PromptRow): AdaptivePromptIO => ({
    onDisk: async (i) => {
      const line = await readIndexedLine(recovered, sampleId(p.id, i, configHash));
      return line ? (JSON.parse(line.toString('utf8')) as SampleRow) : undefined;
    },
    ask: async (round, missing) => {
      const { start, size } = roundOf(plan, round);
      const want = new Set(missing);
      const rows: SampleRow[] = [];
      // The first two requests ask for the whole round with its seed (the samples a fault-free run gets); an
      // endpoint that caps n is then asked for what is missing with seeds of their own.
      for (let attempt = 0; want.size && attempt <= MAX_TOP_UPS; attempt++) {
        const full = attempt < 2;
        const order = [...want];
        const answer = await teacher.complete(
          {
            prompt: p.prompt,
            n: full ? size : want.size,
            seed: promptSeed(input.sampling.seed, p.id, full ? round : round + attempt * 65536),
          },
          ctx?.cancellationSignal,
        );
        tally.requests += answer.httpRequests ?? 1;
        tally.promptTokens += answer.usage.promptTokens;
        tally.completionTokens += answer.usage.completionTokens;
        answer.choices.forEach((choice, k) => {
          const index = full ? start + choice.index : order[k];
          if (index === undefined || !want.has(index)) return;
          want.delete(index);
          const row = toSampleRow(p, index, k, configHash, choice, answer, input.sampling);
          rows.push(row);
          if (choice.logprobs) frames.set(row.id, encodeSampleLogprobs({ id: row.id, tokens: choice.logprobs }));
        });
      }
      if (want.size)
        throw new Error(
          `Teacher ${input.teacher.model} at ${input.teacher.baseURL} returned fewer choices than ${size} for round ${round} of prompt ${p.id} after ${MAX_TOP_UPS} top-up requests`,
        );
      return rows;
    },
    verify: async (row) => (await verdictFor(row, cfg, ctx?.cancellationSignal)).correct,
    write: async (rows, stop) => {
      if (lpOut && rows.length) await lpOut.append(Buffer.concat(rows.map((r) => frames.get(r.id)!)));
      for (const r of rows) frames.delete(r.id);
      // The round's samples and the prompt's stop record in one append: a kill leaves at most a torn last line.
      // A stop record already on disk (a replayed prompt of a budgeted shard) is not written again.
      const lines = [
        ...rows.map((r) => JSON.stringify(r)),
        ...(stop && !stops.has(p.id) ? [JSON.stringify(stop)] : []),
      ];
      if (lines.length) await out.append(lines.join('\n') + '\n');
      recordWritten(ctx, rows, input.teacher);
      written += rows.length;
      beat(written);
    },
  });
  const samplePrompt = async (p: PromptRow) => {
    if (overtaken || (overtaken = await exists(final))) return;
    stops.set(p.id, await samplePromptAdaptively(p.id, configHash, plan, ioFor(p)));
  };
  try {
    if (input.budget) {
      // Within a budget every prompt is replayed from the samples on disk, stopped ones too: the waves' decisions
      // rest on the whole shard's spend and verdicts (see adaptive-budget.ts).
      await sampleInBudgetedWaves(prompts, {
        plan,
        concurrency: input.teacher.concurrency,
        budgetUSD: input.budget.shareUSD,
        ...(input.budget.usdPerSample !== undefined ? { priorUSDPerSample: input.budget.usdPerSample } : {}),
        pricing: input.teacher.pricing!,
        runRound: async (p, progress) => {
          const recorded = stops.get(p.id)?.stopped.drawn;
          if (recorded !== undefined && progress.drawn >= recorded) return { progress, stopped: true };
          if (overtaken || (overtaken = await exists(final))) return { progress, stopped: true };
          const r = await sampleNextRound(p.id, configHash, plan, ioFor(p), progress);
          if (r.stop && !stops.has(p.id)) stops.set(p.id, r.stop);
          return { progress: r.progress, stopped: !!r.stop };
        },
        refuse: async (p, progress) => {
          if (overtaken || stops.has(p.id)) return;
          const stop = stopRecordOf(p.id, configHash, 'budget', progress);
          await ioFor(p).write([], stop);
          stops.set(p.id, stop);
        },
        done: () => overtaken,
      });
    } else {
      await mapWithConcurrency(
        prompts.filter((p) => !stops.has(p.id)),
        input.teacher.concurrency,
        samplePrompt,
      );
    }
    await lpOut?.sync();
    await out.sync();
  } finally {
    await out.close();
    await lpOut?.close();
    await recovered.close();
  }
  const own = { requests: tally.requests, resumedSamples: tally.resumedSamples };
  if (overtaken || (await exists(final))) return adaptiveCommitted(input, final, own);

  // The expected set, from the stop records on disk (the first per prompt wins, for every attempt alike).
  const index = await indexAttempts(final, possible);
  let committed: boolean;
  const finalStops: StopRecord[] = [];
  try {
    const expected = new Map<string, ExpectedSample>();
    for (const p of prompts) {
      // Within a budget the committing attempt's own plan (its decisions rest on its whole view of the shard);
      // otherwise the first record per prompt, the same for every attempt.
      const stop = (input.budget ? stops.get(p.id) : undefined) ?? index.stops.get(stopKey(p.id));
      if (!stop) {
        if (index.vanished || (await exists(final))) return adaptiveCommitted(input, final, own);
        throw new Error(`prompt ${p.id} of ${final} has no stop record in its attempt files after adaptive sampling`);
      }
      finalStops.push(stop);
      for (let i = 0; i < stop.stopped.drawn; i++)
        expected.set(sampleId(p.id, i, configHash), possible.get(sampleId(p.id, i, configHash))!);
    }
    for (const id of [...index.samples.keys()]) if (!expected.has(id)) index.samples.delete(id);
    if (index.samples.size < expected.size) {
      if (index.vanished || (await exists(final))) return adaptiveCommitted(input, final, own);
      throw new Error(
        `${expected.size - index.samples.size} of the ${expected.size} samples of ${final} are missing from its attempt files after generation`,
      );
    }
    if (await exists(final)) return adaptiveCommitted(input, final, own);
    await writeJsonlAtomic(
      shardSamplingFile(final),
      finalStops.map((s) => s.stopped),
    );
    if (input.sampling.logprobs) await writeShardSidecar(input, final, index);
    committed = await commitShard(final, index);
  } finally {
    await index.close();
  }
  if (!committed) return adaptiveCommitted(input, final, own);
  await removeShardAttempts(input, final);
  return {
    shardIndex: input.shardIndex,
    ...(await committedCounts(final)),
    samplesRef: await refOfFile(final),
    requests: tally.requests,
    resumedSamples: tally.resumedSamples,
  };
}

async function committedCounts(final: string): Promise<ShardTally> {
  const stops: StopRecord[] = [];
  if (await exists(shardSamplingFile(final)))
    for await (const stopped of readJsonl<StopRecord['stopped']>(shardSamplingFile(final))) stops.push({ stopped });
  return { ...(await tallyOf(final)), adaptive: adaptiveTallyOf(stops) };
}

async function adaptiveCommitted(
  input: GenerateShardInput,
  final: string,
  own: Partial<ShardTally>,
): Promise<GenerateShardResult> {
  const r = await committedShard(input, final, own);
  return { ...r, ...(await committedCounts(final)), ...own };
}
