import { createReadStream, promises as fs } from 'node:fs';
import * as readline from 'node:readline';
import * as path from 'node:path';
import { currentActivity } from '../activity-context';
import { recordCost, recordSamples } from '../metrics';
import { costUSD } from '../../core/cost';
import type { ArtifactRef, PromptRow, SampleRow } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { exists, readJsonl, refOfFile, writeChunksAtomic } from '../artifacts/store';
import { layout } from '../artifacts/layout';
import { createTeacherClient, type TeacherAnswer } from './teacher-client';
import { runShardBatch } from './batch-shard';
import { generationConfigHash, promptSeed, sampleId } from './sample-ids';
import { mapWithConcurrency } from './concurrency';
import { loadSourcePlans } from '../dataset/mixture';

export interface GenerateShardInput {
  runDir: string;
  shardIndex: number;
  teacher: RunSpec['teacher'];
  sampling: RunSpec['sampling'];
}

export interface ShardTally {
  prompts: number;
  samples: number;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  /** Samples found already written by an earlier attempt (work not redone). */
  resumedSamples: number;
  /** Prompts answered through the provider's Batch API (teacher.mode = batch). */
  batchRequests?: number;
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
 * Samples are appended to `<shard>.partial` as each prompt completes; a retried attempt (after a crash, a lost
 * worker or a timeout) drops a torn last line, skips every sample id already there and asks only for what is
 * missing. The complete shard is renamed into place, so a finished shard is never rewritten.
 */
export async function generateShard(input: GenerateShardInput): Promise<GenerateShardResult> {
  const final = layout.shardSamples(input.runDir, input.shardIndex);
  if (await exists(final)) {
    // a crash between the rename of the sorted shard and the removal of its .partial leaves the latter behind
    await fs.rm(`${final}.partial`, { force: true });
    const tally = await tallyOf(final);
    return { shardIndex: input.shardIndex, samplesRef: await refOfFile(final), ...tally, resumedSamples: tally.samples, requests: 0 };
  }
  const partial = `${final}.partial`;
  await fs.mkdir(path.dirname(final), { recursive: true });
  const configHash = generationConfigHash(input);
  const { written, tally } = await recoverPartial(partial);
  tally.resumedSamples = written.size;

  const prompts: PromptRow[] = [];
  for await (const p of readJsonl<PromptRow>(layout.shardPrompts(input.runDir, input.shardIndex))) prompts.push(p);
  tally.prompts = prompts.length;

  const teacher = createTeacherClient(input.teacher, input.sampling);
  const planFor = await sourcePlansOf(input, { n: input.sampling.n, configHash, sampling: input.sampling, teacher, existing: false });
  const ctx = currentActivity();
  const beat = () => ctx?.heartbeat({ shardIndex: input.shardIndex, samples: written.size });
  // Heartbeat on a timer, not only when a prompt completes: a teacher slower per request than the heartbeat timeout
  // must not time the attempt out (and throw away the requests in flight). Hung requests are bounded by
  // teacher.requestTimeoutSeconds; the SDK throttles what reaches the server.
  const ticker = ctx ? setInterval(beat, heartbeatIntervalMs(ctx.info.heartbeatTimeoutMs)) : undefined;
  ticker?.unref();
  const out = await fs.open(partial, 'a').catch((err) => {
    clearInterval(ticker);
    throw err;
  });
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
    if (!missing.size) return;
    const rows: SampleRow[] = [];
    // A source that reuses the responses in its data: its one sample is that response, and the teacher is not asked.
    if (existing) rows.push(existingSample(p, configHash, sampling));
    if (existing) missing.clear();
    for (let attempt = 0; missing.size && attempt <= MAX_TOP_UPS; attempt++) {
      const full = attempt < 2;
      const want = full ? n : missing.size;
      const answer =
        attempt === 0 && prefetched
          ? prefetched
          : await teacher.complete({ prompt: p.prompt, n: want, seed: promptSeed(sampling.seed, p.id, full ? 0 : attempt) }, ctx?.cancellationSignal);
      if (!(attempt === 0 && prefetched)) tally.requests += 1;
      tally.promptTokens += answer.usage.promptTokens;
      tally.completionTokens += answer.usage.completionTokens;
      const order = [...missing];
      answer.choices.forEach((choice, k) => {
        const index = full ? choice.index : order[k];
        if (index === undefined || !missing.has(index)) return;
        missing.delete(index);
        rows.push(toSampleRow(p, index, k, configHash, choice, answer, sampling));
      });
    }
    if (missing.size) {
      throw new Error(`Teacher ${input.teacher.model} at ${input.teacher.baseURL} returned fewer choices than n=${n} for prompt ${p.id} after ${MAX_TOP_UPS} top-up requests`);
    }
    rows.sort((a, b) => a.sampleIndex - b.sampleIndex);
    // One write per prompt: a kill leaves at most one torn line, which recovery drops.
    await out.writeFile(rows.map((r) => JSON.stringify(r)).join('\n') + '\n').catch((err: unknown) => {
      // writeFile writes all of it or throws (a plain write may be short). A write error (ENOSPC, EIO) names no
      // file: say which. The attempt fails and a retry resumes from the .partial.
      if (err instanceof Error && !err.message.includes(partial)) err.message += ` (appending to ${partial})`;
      throw err;
    });
    for (const r of rows) written.add(r.id);
    const used = { promptTokens: rows.reduce((t, r) => t + r.usage.promptTokens, 0), completionTokens: rows.reduce((t, r) => t + r.usage.completionTokens, 0) };
    recordSamples(ctx, rows.length, { prompt: used.promptTokens, completion: used.completionTokens }, input.teacher.model);
    recordCost(ctx, costUSD(used, input.teacher.pricing), input.teacher.model);
    tally.samples = written.size;
    beat();
  };
  try {
    const pending = prompts.filter((p) => {
      const { n, configHash } = planFor(p);
      return Array.from({ length: n }, (_, i) => sampleId(p.id, i, configHash)).some((id) => !written.has(id));
    });
    if (input.teacher.mode === 'batch' && pending.length && !pending.some((p) => p.source)) {
      const answers = await runShardBatch({ ...input, configHash, prompts: pending, client: teacher.openai, signal: ctx?.cancellationSignal, heartbeat: (d) => ctx?.heartbeat({ shardIndex: input.shardIndex, samples: written.size, ...d }) });
      tally.batchRequests = answers.size;
      // Prompts the batch did not answer (failed lines) go online, like top-ups.
      await mapWithConcurrency(pending, input.teacher.concurrency, (p) => fillPrompt(p, answers.get(p.id)));
    } else {
      await mapWithConcurrency(pending, input.teacher.concurrency, (p) => fillPrompt(p));
    }
    await out.sync();
  } finally {
    clearInterval(ticker);
    await out.close();
  }
  await writeSortedShard(partial, final, prompts);
  await fs.rm(partial, { force: true });
  tally.samples = written.size;
  return { shardIndex: input.shardIndex, samplesRef: await refOfFile(final), ...tally };
}

/** A heartbeat a few times per heartbeat timeout (at most every 2 s): the SDK sends at most one per 0.8 × timeout. */
export function heartbeatIntervalMs(heartbeatTimeoutMs: number | undefined): number {
  if (!heartbeatTimeoutMs) return 2000;
  return Math.max(100, Math.min(2000, Math.floor(heartbeatTimeoutMs / 4)));
}

/**
 * The finished shard, in a fixed order: by the prompt's position in the shard, then by sample index. The .partial
 * holds samples in the order prompts completed (with several request lanes that follows the teacher's timing, and
 * a resumed attempt appends after what survived), so without the sort two runs of one spec, or a crashed and
 * resumed run and a fault-free one, would give the same samples in different orders (and so a different merged
 * file, SFT file and trained student). Written atomically (temp file + rename) next to the .partial.
 */
async function writeSortedShard(partial: string, final: string, prompts: PromptRow[]): Promise<void> {
  const position = new Map(prompts.map((p, i) => [p.id, i]));
  // Only each line's sort key and byte range are kept in memory (a shard may hold up to 10,000 prompts × n samples).
  const lines: { pos: number; index: number; start: number; end: number }[] = [];
  let offset = 0;
  const rl = readline.createInterface({ input: createReadStream(partial, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of rl) {
    const start = offset;
    offset += Buffer.byteLength(line) + 1;
    if (!line) continue;
    const row = JSON.parse(line) as SampleRow;
    lines.push({ pos: position.get(row.promptId) ?? Number.MAX_SAFE_INTEGER, index: row.sampleIndex, start, end: offset });
  }
  lines.sort((a, b) => a.pos - b.pos || a.index - b.index);
  const src = await fs.open(partial, 'r');
  try {
    await writeChunksAtomic(final, (async function* () {
      let chunk: Buffer[] = [];
      let size = 0;
      for (const l of lines) {
        const buf = Buffer.allocUnsafe(l.end - l.start);
        await src.read(buf, 0, buf.length, l.start);
        chunk.push(buf);
        size += buf.length;
        if (size >= 1 << 20) {
          yield Buffer.concat(chunk);
          chunk = [];
          size = 0;
        }
      }
      if (chunk.length) yield Buffer.concat(chunk);
    })());
  } finally {
    await src.close();
  }
}

function shareOf(total: number, parts: number, position: number): number {
  const n = Math.max(1, parts);
  return Math.floor(total / n) + (position < total % n ? 1 : 0);
}

function toSampleRow(
  p: PromptRow,
  index: number,
  position: number,
  configHash: string,
  choice: TeacherAnswer['choices'][number],
  answer: TeacherAnswer,
  sampling: RunSpec['sampling'],
): SampleRow {
  return {
    id: sampleId(p.id, index, configHash),
    promptId: p.id,
    sampleIndex: index,
    configHash,
    prompt: p.prompt,
    answer: p.answer,
    ...(p.task ? { task: p.task } : {}),
    ...(p.tests !== undefined ? { tests: p.tests } : {}),
    ...(p.source ? { source: p.source } : {}),
    content: choice.content,
    ...(choice.reasoning ? { reasoning: choice.reasoning } : {}),
    finishReason: choice.finishReason,
    // Usage is per request; it is shared out so that summing a request's samples gives its exact total.
    usage: {
      promptTokens: shareOf(answer.usage.promptTokens, answer.choices.length, position),
      completionTokens: shareOf(answer.usage.completionTokens, answer.choices.length, position),
    },
    teacher: { model: answer.model, systemFingerprint: answer.systemFingerprint ?? null },
    sampling: { temperature: sampling.temperature, top_p: sampling.top_p, max_tokens: sampling.max_tokens, seed: sampling.seed },
    latencyMs: answer.latencyMs,
  };
}

interface PromptPlan {
  n: number;
  configHash: string;
  sampling: RunSpec['sampling'];
  teacher: ReturnType<typeof createTeacherClient>;
  existing: boolean;
}

/**
 * Each prompt's generation: the run's, or its mixture source's (own sampling, own system prompt: its own config
 * hash, so its sample ids change with them; or its existing responses, one sample and no teacher call).
 */
async function sourcePlansOf(input: GenerateShardInput, base: PromptPlan): Promise<(p: PromptRow) => PromptPlan> {
  const plans = await loadSourcePlans(input.runDir);
  if (!plans) return () => base;
  const bySource = new Map<string, PromptPlan>();
  return (p) => {
    const plan = p.source ? plans.get(p.source) : undefined;
    if (!plan) return base;
    let got = bySource.get(plan.name);
    if (!got) {
      const sampling = { ...input.sampling, ...plan.sampling };
      const teacher = plan.systemPrompt !== undefined ? { ...input.teacher, systemPrompt: plan.systemPrompt } : input.teacher;
      const existing = plan.responses === 'existing';
      got = { n: existing ? 1 : sampling.n, configHash: existing ? 'existing' : generationConfigHash({ teacher, sampling }), sampling, teacher: createTeacherClient(teacher, sampling), existing };
      bySource.set(plan.name, got);
    }
    return got;
  };
}

function existingSample(p: PromptRow, configHash: string, sampling: RunSpec['sampling']): SampleRow {
  return {
    id: sampleId(p.id, 0, configHash),
    promptId: p.id,
    sampleIndex: 0,
    configHash,
    prompt: p.prompt,
    answer: p.answer,
    ...(p.task ? { task: p.task } : {}),
    ...(p.source ? { source: p.source } : {}),
    content: p.response ?? '',
    finishReason: 'stop',
    usage: { promptTokens: 0, completionTokens: 0 },
    teacher: { model: 'existing', systemFingerprint: null },
    sampling: { temperature: sampling.temperature, top_p: sampling.top_p, max_tokens: sampling.max_tokens, seed: sampling.seed },
    latencyMs: 0,
  };
}

function emptyTally(): ShardTally {
  return { prompts: 0, samples: 0, requests: 0, promptTokens: 0, completionTokens: 0, resumedSamples: 0 };
}

/** Reads what an earlier attempt wrote, cutting a torn last line (a kill mid-write) so appends start clean. */
async function recoverPartial(partial: string): Promise<{ written: Set<string>; tally: ShardTally }> {
  const written = new Set<string>();
  const tally = emptyTally();
  if (!(await exists(partial))) return { written, tally };
  const text = await fs.readFile(partial, 'utf8');
  const lastNewline = text.lastIndexOf('\n');
  const complete = lastNewline < 0 ? '' : text.slice(0, lastNewline + 1);
  if (Buffer.byteLength(complete) !== Buffer.byteLength(text)) await fs.truncate(partial, Buffer.byteLength(complete));
  for (const line of complete.split('\n')) {
    if (!line) continue;
    const row = JSON.parse(line) as SampleRow;
    written.add(row.id);
    tally.promptTokens += row.usage.promptTokens;
    tally.completionTokens += row.usage.completionTokens;
  }
  tally.samples = written.size;
  return { written, tally };
}

async function tallyOf(file: string): Promise<ShardTally> {
  const tally = emptyTally();
  const prompts = new Set<string>();
  for await (const row of readJsonl<SampleRow>(file)) {
    tally.samples += 1;
    prompts.add(row.promptId);
    tally.promptTokens += row.usage.promptTokens;
    tally.completionTokens += row.usage.completionTokens;
  }
  tally.prompts = prompts.size;
  return tally;
}


