import { randomUUID } from 'node:crypto';
import { createReadStream, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { startCpuWorker, type ManagedProcess } from '../../infra/processes';
import { prepareDataset } from '../../activities/prepare/prepare-dataset';
import { mergeShards } from '../../activities/generate/merge-shards';
import { generationConfigHash, promptSeed, sampleId } from '../../activities/generate/sample-ids';
import { layout } from '../../activities/artifacts/layout';
import { readJsonl, readJsonlLines } from '../../activities/artifacts/store';
import { DatasetSchema, SamplingSchema, TeacherSchema } from '../../schemas/run-spec';
import type { PromptRow, SampleRow } from '../../schemas/artifact';
import type { GenerationInput } from '../../workflows/generation';
import { emptyGenerationTally } from '../../workflows/messages';
import { startLongAnswerTeacher, type LongAnswerTeacher } from '../helpers/long-answer-teacher';
import { startPartitionProxy, type PartitionProxy } from '../helpers/partition-proxy';
import { activityAttempts, failureMessage, listDir, sleep, useChaosStack, waitFor, type ChaosStack } from './harness';
import { recordRow } from './table';

/**
 * Two live attempts of one shard, through the real pipeline: the generation workflow on the dev server, real worker
 * processes. Worker A runs the shards behind a TCP forwarder that is then partitioned (test/helpers/partition-proxy.ts):
 * the server hears no heartbeat, times the attempts out and starts their retries on worker B, while A, cut off from
 * the server but not from the teacher or the disk, goes on generating the same shards until the SDK's own timer
 * cancels its attempts some seconds later. The teacher is a test double answering 1.1 MiB per sample
 * (test/helpers/long-answer-teacher.ts). Counted from the files on disk: every expected sample id exactly once, no
 * corrupt line, the content the teacher gives for that seed, mergeShards; and, from the attempt files seen meanwhile,
 * that both attempts of a shard did append at the same time.
 */

jest.setTimeout(1_800_000);

const PROMPTS = 48;
const SHARD = 24;
const N = 2;
const BYTES_PER_CHOICE = Math.ceil(1.1 * 2 ** 20);
const HEARTBEAT_SECONDS = 5;

let s: ChaosStack;
useChaosStack('attempts', { gpu: false }, { started: (stack) => void (s = stack) });

function generationInput(runDir: string, shardCount: number, baseURL: string): GenerationInput {
  return {
    runDir,
    parentWorkflowId: '',
    shardCount,
    teacher: TeacherSchema.parse({
      baseURL,
      model: 'long-answer-teacher',
      concurrency: 2,
      maxRetries: 3,
      requestTimeoutSeconds: 60,
    }),
    sampling: SamplingSchema.parse({ n: N, temperature: 1.0, max_tokens: 200, seed: 3 }),
    maxShardsInFlight: 2,
    cpuQueue: 'distillery-cpu',
    heartbeatSeconds: HEARTBEAT_SECONDS,
    stageHours: 1,
    nextShard: 0,
    tally: emptyGenerationTally(shardCount),
    maxHistoryEvents: 8000,
  };
}

/** Complete lines in each shard's unfinished files (.partial: one shared file, or one per attempt). */
async function partialLinesByShard(dir: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const f of listDir(dir)) {
    const m = /^shard-(\d+)\.jsonl.*\.partial$/.exec(f);
    if (!m) continue;
    let lines = 0;
    try {
      for await (const chunk of createReadStream(path.join(dir, f)) as AsyncIterable<Buffer>)
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1;
    } catch {
      /* removed meanwhile */
    }
    out.set(Number(m[1]), (out.get(Number(m[1])) ?? 0) + lines);
  }
  return out;
}

/** The generateShard activities pending on the server, with their attempt numbers, when started. */
async function startedAttempts(workflowId: string): Promise<number[]> {
  const d = await s.client.workflow
    .getHandle(workflowId)
    .describe()
    .catch(() => null);
  return (d?.raw.pendingActivities ?? [])
    .filter(
      (a) =>
        a.activityType?.name === 'generateShard' &&
        a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
    )
    .map((a) => a.attempt ?? 1);
}

interface DiskCount {
  expected: number;
  lost: number;
  duplicated: number;
  corrupt: number;
  changed: number;
  leftovers: string[];
  commitTimes: Map<number, number>;
}

/** Counts the shards on disk against the prompts: ids, whole lines, and the content the teacher gives for each seed. */
async function countOnDisk(
  runDir: string,
  shardCount: number,
  input: GenerationInput,
  teacher: LongAnswerTeacher,
): Promise<DiskCount> {
  const hash = generationConfigHash(input);
  const expected = new Map<string, PromptRow>();
  for (let i = 0; i < shardCount; i++) {
    for await (const p of readJsonl<PromptRow>(layout.shardPrompts(runDir, i)))
      for (let k = 0; k < N; k++) expected.set(sampleId(p.id, k, hash), p);
  }
  const seen = new Map<string, number>();
  let corrupt = 0;
  let changed = 0;
  const commitTimes = new Map<number, number>();
  for (let i = 0; i < shardCount; i++) {
    const file = layout.shardSamples(runDir, i);
    try {
      commitTimes.set(i, statSync(file).mtimeMs);
    } catch {
      continue;
    }
    for await (const l of readJsonlLines(file)) {
      let row: SampleRow;
      try {
        row = JSON.parse(l.text) as SampleRow;
      } catch {
        corrupt += 1;
        continue;
      }
      seen.set(row.id, (seen.get(row.id) ?? 0) + 1);
      const p = expected.get(row.id);
      if (p && row.content !== teacher.contentFor(p.prompt, promptSeed(input.sampling.seed, p.id, 0), row.sampleIndex))
        changed += 1;
    }
  }
  const lost = [...expected.keys()].filter((id) => !seen.has(id)).length;
  const duplicated =
    [...seen.values()].reduce((t, c) => t + c - 1, 0) + [...seen.keys()].filter((id) => !expected.has(id)).length;
  const leftovers = listDir(path.join(runDir, 'generate')).filter((f) => f.endsWith('.partial') || f.endsWith('.tmp'));
  return { expected: expected.size, lost, duplicated, corrupt, changed, leftovers, commitTimes };
}

/**
 * Watches each shard's attempt files (when an attempt's file last grew) and when each shard was committed: evidence
 * that the cut-off attempt and its retry really wrote at the same time.
 */
function watchAttempts(dir: string) {
  const files = new Map<string, { shard: number; attempt: number; size: number; lastGrewAt: number }>();
  const committedAt = new Map<number, number>();
  const timer = setInterval(() => {
    const now = Date.now();
    for (const f of listDir(dir)) {
      const shard = /^shard-(\d+)\.jsonl$/.exec(f);
      if (shard && !committedAt.has(Number(shard[1]))) committedAt.set(Number(shard[1]), now);
      const m = /^shard-(\d+)\.jsonl\.attempt-(\d+)-[0-9a-f]+\.partial$/.exec(f);
      if (!m) continue;
      let size: number;
      try {
        size = statSync(path.join(dir, f)).size;
      } catch {
        continue;
      }
      const seen = files.get(f);
      if (!seen) files.set(f, { shard: Number(m[1]), attempt: Number(m[2]), size, lastGrewAt: size ? now : 0 });
      else if (size > seen.size) Object.assign(seen, { size, lastGrewAt: now });
    }
  }, 100);
  return {
    stop: () => clearInterval(timer),
    files: () => Object.fromEntries(files),
    committedAt: () => Object.fromEntries(committedAt),
    /** Shards where the first attempt's file grew after `since` and a retry's file grew before the shard's commit. */
    overlapping: (since: number) =>
      [...committedAt.keys()].filter((shard) => {
        const mine = [...files.values()].filter((f) => f.shard === shard);
        return (
          mine.some((f) => f.attempt === 1 && f.lastGrewAt > since) &&
          mine.some((f) => f.attempt >= 2 && f.lastGrewAt > 0 && f.lastGrewAt < committedAt.get(shard)!)
        );
      }),
  };
}

test('worker cut off from Temporal mid-shard: its attempts run on beside their retries; no sample lost, duplicated or corrupt', async () => {
  // first asks answered in 2 s, a prompt asked again (the retry redoing the cut-off attempt's work) in 2.5 s: the
  // cut-off attempt still has asks in flight when its retry starts asking
  const teacher = await startLongAnswerTeacher({
    bytesPerChoice: BYTES_PER_CHOICE,
    delayFor: (r) => (r.repeat ? 2500 : 2000),
  });
  let partition: PartitionProxy | null = null;
  let workerA: ManagedProcess | null = null;
  let watch: ReturnType<typeof watchAttempts> | null = null;
  const started = Date.now();
  try {
    partition = await startPartitionProxy(s.address);
    await s.kill('cpu');
    // A takes no more activities than there are shards: with no poll of its own outstanding, the retries go to B
    workerA = await startCpuWorker(
      { ...s.workerEnv, TEMPORAL_ADDRESS: partition.address, DISTILLERY_CPU_MAX_ACTIVITIES: String(PROMPTS / SHARD) },
      path.join(s.tmp, 'cpu-worker-a.log'),
    );

    const runId = `attempts-${randomUUID()}`;
    const prepared = await prepareDataset({
      artifactRoot: path.join(s.tmp, 'artifacts'),
      runId,
      dataset: DatasetSchema.parse({ source: { type: 'builtin', task: 'arithmetic', count: PROMPTS, seed: 31 } }),
      shardSize: SHARD,
    });
    const dir = path.join(prepared.runDir, 'generate');
    const input = generationInput(prepared.runDir, prepared.shardCount, teacher.url);
    // the teacher double and the partition proxy share this process: answers made ahead keep it free to forward
    for await (const p of readJsonl<PromptRow>(prepared.prompts))
      teacher.warm(input.teacher.model, p.prompt, promptSeed(input.sampling.seed, p.id, 0), N);
    const h = await s.client.workflow.start('generationWorkflow', {
      taskQueue: 'distillery',
      workflowId: runId,
      args: [input],
    });

    // Worker A is into every shard; the teacher holds its next requests (A waits, mid-shard) while B starts
    watch = watchAttempts(dir);
    await waitFor(
      'four prompts of every shard written',
      async () => {
        const lines = await partialLinesByShard(dir);
        // not more: the retry reads what is written before it asks, and the cut-off attempt lives only until the
        // SDK's own heartbeat timer cancels it
        return Array.from({ length: prepared.shardCount }, (_, i) => lines.get(i) ?? 0).every((l) => l >= 4 * N);
      },
      120_000,
      500,
    );
    teacher.hold('-');
    await s.startCpu();
    // retries before the cut would be timeouts of a worker too busy to heartbeat: the note says so
    const retriedBeforeCut = (await startedAttempts(runId)).filter((a) => a >= 2).length;
    partition.partition();
    const cutAt = Date.now();
    teacher.release('-');
    // the server times A's attempts out and starts their retries on worker B
    await waitFor(
      'a retry of every shard started on worker B',
      async () => {
        const attempts = await startedAttempts(runId);
        return attempts.length === prepared.shardCount && attempts.every((a) => a >= 2);
      },
      120_000,
      100,
    );
    const retriedAt = Date.now();

    let timer: NodeJS.Timeout | undefined;
    const error = await Promise.race([
      h.result().then(
        () => null,
        (e: Error) => failureMessage((e as { cause?: never }).cause) || e.message,
      ),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve('did not complete within 240 s'), 240_000))),
    ]);
    clearTimeout(timer);
    if (error?.startsWith('did not complete'))
      await h.terminate('chaos suite: the run did not complete').catch(() => undefined);
    // A's attempts are still going: wait until every request is closed and the teacher has heard nothing for 3 s
    await waitFor(
      'the cut-off attempts to finish',
      () => {
        const log = teacher.requests();
        return (
          log.every((q) => q.closedAt) &&
          Date.now() - Math.max(...log.map((q) => Math.max(q.receivedAt, q.closedAt ?? Infinity))) > 3000
        );
      },
      120_000,
      200,
    );
    watch.stop();
    const overlapping = watch.overlapping(retriedAt);
    partition.heal();
    await sleep(2000);

    const merged = await mergeShards({ runDir: prepared.runDir, shardCount: prepared.shardCount }).then(
      (m) => m.samples.count,
      (e: Error) => `mergeShards: ${e.message}`,
    );
    const c = await countOnDisk(prepared.runDir, prepared.shardCount, input, teacher);
    const attempts = (await activityAttempts(s.client, runId)).generateShard ?? [];
    const log = teacher.requests();
    const repeats = log.filter((q) => q.repeat).length;
    // the two attempts overlapped: asks answered before a shard's commit and after it, for prompts asked twice
    const shardOfPrompt = new Map<string, number>();
    for (let i = 0; i < prepared.shardCount; i++)
      for await (const p of readJsonl<PromptRow>(layout.shardPrompts(prepared.runDir, i)))
        shardOfPrompt.set(p.prompt, i);
    const answeredAround = (before: boolean) =>
      log.filter((q) => {
        const commit = c.commitTimes.get(shardOfPrompt.get(q.prompt) ?? -1);
        return (
          q.repeat &&
          commit !== undefined &&
          q.answeredAt !== undefined &&
          (before ? q.answeredAt < commit : q.answeredAt > commit)
        );
      }).length;
    const retriesBeforeCommit = answeredAround(true);
    const retriesAfterCommit = answeredAround(false);
    // the timeline behind the counts, kept with the stack's logs (CHAOS_KEEP=1)
    writeFileSync(
      path.join(s.tmp, 'attempts-timeline.json'),
      JSON.stringify(
        {
          started,
          cutAt,
          retriedAt,
          commitTimes: Object.fromEntries(c.commitTimes),
          seenCommitted: watch.committedAt(),
          files: watch.files(),
          requests: log.map((q) => ({ ...q, prompt: undefined, shard: shardOfPrompt.get(q.prompt) })),
        },
        null,
        1,
      ),
    );
    const concurrent =
      attempts.length === prepared.shardCount && attempts.every((a) => a >= 2) && repeats > 0 && overlapping.length > 0;
    const ok =
      !error &&
      merged === c.expected &&
      c.lost === 0 &&
      c.duplicated === 0 &&
      c.corrupt === 0 &&
      c.changed === 0 &&
      c.leftovers.length === 0 &&
      concurrent;
    recordRow({
      fault: `worker cut off from Temporal mid-shard (heartbeat timeout ${HEARTBEAT_SECONDS} s): its attempts run on beside their retries, ${(BYTES_PER_CHOICE / 2 ** 20).toFixed(1)} MiB samples`,
      runs: 1,
      completed: error ? 0 : 1,
      lost: c.lost,
      duplicated: c.duplicated,
      redone: repeats,
      bound: c.expected / N,
      unit: 'teacher requests',
      ok,
      note: [
        `retries started ${((retriedAt - cutAt) / 1000).toFixed(1)} s after the cut (attempts ${attempts.join(',')}${retriedBeforeCut ? `, ${retriedBeforeCut} retried before it` : ''})`,
        `${overlapping.length} of ${prepared.shardCount} shards had both attempts appending (the cut-off one after the retry started, the retry before the commit); prompts asked twice answered ${retriesBeforeCommit} before and ${retriesAfterCommit} after their shard's commit`,
        `${c.corrupt} corrupt lines, ${c.changed} samples with other content, ${c.leftovers.length} attempt files left; ${((Date.now() - started) / 1000).toFixed(0)} s`,
        typeof merged === 'string' ? merged.slice(0, 200) : '',
        error ? `FAILED: ${error.slice(0, 300)}` : '',
      ]
        .filter(Boolean)
        .join('; '),
    });
    expect(error).toBeNull();
    expect({
      merged,
      lost: c.lost,
      duplicated: c.duplicated,
      corrupt: c.corrupt,
      changed: c.changed,
      leftovers: c.leftovers,
    }).toEqual({
      merged: c.expected,
      lost: 0,
      duplicated: 0,
      corrupt: 0,
      changed: 0,
      leftovers: [],
    });
    expect(concurrent).toBe(true);
    expect(repeats).toBeLessThanOrEqual(c.expected / N);
  } finally {
    watch?.stop();
    partition?.heal();
    if (workerA) {
      workerA.kill('SIGKILL');
      await workerA.exited;
    }
    await partition?.close();
    await teacher.close();
  }
});
