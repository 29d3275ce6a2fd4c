import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { runDirFor } from '../../activities/artifacts/store';
import type { RunSummary } from '../../workflows/distillation';
import {
  accountingProblems,
  accountRun,
  activityAttempts,
  type ActivityAttempts,
  activityResults,
  activitySeconds,
  chaosSpec,
  compareOutputs,
  countLines,
  filesStarting,
  listDir,
  logLines,
  pendingHeartbeats,
  processesMatching,
  progressOf,
  runOutputs,
  sleep,
  useChaosStack,
  waitFor,
  type ChaosStack,
  type RunOutputs,
} from './harness';
import { recordRow } from './table';

/**
 * Crashes and server restarts, against a fault-free run of the same spec (same seed): the worker that runs a stage
 * is SIGKILLed while that stage's activity is running (proved afterwards by the activity's attempt number in
 * history), a new worker is started, and the run must complete with every stage's output equal to the fault-free
 * run's — same sample ids, none lost, none duplicated, same trained weights and scores — and the work redone must
 * stay within one heartbeat or checkpoint window.
 *
 * CHAOS_STAGES=generate,verify,… limits the scenarios (default: all).
 */

jest.setTimeout(1_800_000);

let s: ChaosStack;
let ref: {
  summary: RunSummary;
  outputs: RunOutputs;
  requests: number;
  seconds: Record<string, number>;
  retried: string[];
};
const SPEC_NAME = 'chaos';
const only = (process.env.CHAOS_STAGES ?? '').split(',').filter(Boolean);
const want = (name: string) => !only.length || only.includes(name);

// A little teacher latency so that generation lasts long enough to be interrupted mid-shard.
useChaosStack(
  'crash',
  { teacherLatencyMs: 15 },
  {
    started: async (stack) => {
      s = stack;
      const workflowId = `chaos-ref-${randomUUID()}`;
      const before = s.teacher.stats().requests;
      const started = Date.now();
      const summary = (await s.client.workflow.execute('distillationWorkflow', {
        taskQueue: 'distillery',
        workflowId,
        args: [chaosSpec(s, SPEC_NAME)],
      })) as RunSummary;
      const requests = s.teacher.stats().requests - before;
      const seconds = await activitySeconds(s.client, workflowId);
      const attempts = await activityAttempts(s.client, workflowId);
      const retried = Object.entries(attempts)
        .filter(([, a]) => a.some((n) => n > 1))
        .map(([t, a]) => `${t} attempts ${JSON.stringify(a.filter((n) => n > 1))}`);
      ref = { summary, outputs: await runOutputs(summary), requests, seconds, retried };
      const account = await accountRun(summary.runDir, (chaosSpec(s, SPEC_NAME).sampling as { n: number }).n);
      console.log(
        `fault-free reference: ${((Date.now() - started) / 1000).toFixed(1)} s, ${requests} teacher requests, activity seconds ${JSON.stringify(seconds)}`,
      );
      recordRow({
        fault: 'none (fault-free reference run)',
        runs: 1,
        completed: 1,
        // a run checked against itself, from its files: prompts × n samples, each with a verdict and a filter decision
        lost: account.lost,
        duplicated: account.duplicated,
        // redone: teacher requests beyond one per prompt (n choices per request), counted at the teacher
        redone: requests - (ref.summary.counts.prepare?.kept ?? 0),
        bound: 0,
        unit: 'teacher requests',
        ok:
          retried.length === 0 &&
          account.lost === 0 &&
          account.duplicated === 0 &&
          requests === ref.summary.counts.prepare?.kept,
        note: [
          `${ref.summary.counts.generate?.samples} samples, ${requests} requests, ${((Date.now() - started) / 1000).toFixed(0)} s`,
          retried.length ? `RETRIED WITHOUT A FAULT: ${retried.join(', ')}` : '',
          accountingProblems(account),
        ]
          .filter(Boolean)
          .join('; '),
      });
    },
  },
);

test('the fault-free run needs no retry (every activity heartbeats within timeouts.heartbeatSeconds)', () => {
  // fineTune's baseline export must run after its heartbeat ticker starts: before it, a short heartbeat timeout would
  // fail every first attempt.
  expect(ref.retried).toEqual([]);
});

test('the fault-free run accounts for every row in its files, and asked the teacher once per prompt', async () => {
  const account = await accountRun(ref.summary.runDir, (spec().sampling as { n: number }).n);
  expect(accountingProblems(account)).toBe('');
  expect(account.stages.find((st) => st.stage === 'generate')!.in).toBe(
    (ref.summary.counts.prepare?.kept ?? 0) * (spec().sampling as { n: number }).n,
  );
  expect(ref.requests).toBe(ref.summary.counts.prepare?.kept);
});

type Which = 'cpu' | 'gpu';

interface Scenario {
  stage: 'generate' | 'verify' | 'filter' | 'finetune' | 'evaluate';
  worker: Which;
  activity: string;
  /** Waits until the stage's activity is running and at the point to strike; returns what it saw. */
  strike: (h: WorkflowHandle, runDir: string) => Promise<Record<string, unknown>>;
  /** Work redone and its bound, measured: from what was seen before the kill, the history and the completed run. */
  redone: (ctx: {
    seen: Record<string, unknown>;
    summary: RunSummary;
    requests: number;
    workflowId: string;
    attempts: ActivityAttempts;
  }) => Promise<{ redone: number; bound: number; unit: string; note?: string }>;
}

const spec = () => chaosSpec(s, SPEC_NAME);

/**
 * A stage without a checkpoint: a retry redoes all of it. What is measured is how often it ran: the attempts of its
 * activity in history beyond the first (one kill must cost one rerun of the stage, not more).
 */
function wholeStageRedone(
  activity: string,
  attempts: ActivityAttempts,
  note: string,
): { redone: number; bound: number; unit: string; note: string } {
  const a = attempts[activity] ?? [];
  return {
    redone: Math.max(1, ...a) - 1,
    bound: 1,
    unit: 'whole stage redone (attempts)',
    note: `${note}; ${activity} attempts ${JSON.stringify(a)}`,
  };
}

/** The rows of a run's unfinished shard files (.partial), i.e. samples written by attempts still running. */
function partialRows(runDir: string): number {
  const dir = path.join(runDir, 'generate');
  return listDir(dir)
    .filter((f) => f.endsWith('.partial'))
    .reduce((t, f) => t + countLines(path.join(dir, f)), 0);
}

const scenarios: Scenario[] = [
  {
    stage: 'generate',
    worker: 'cpu',
    activity: 'generateShard',
    strike: async (h, runDir) => {
      await waitFor('a finished shard and another one half written', async () => {
        const p = await progressOf(h);
        return !!p?.generation && p.generation.shardsDone >= 2 && partialRows(runDir) > 0;
      });
      return { partialRows: partialRows(runDir) };
    },
    redone: async ({ requests, summary }) => {
      const t = spec().teacher as { concurrency: number };
      const g = spec().generation as { maxShardsInFlight: number };
      return {
        redone: requests - ref.requests,
        // the requests in flight when the worker died: lanes per shard × shards in flight
        bound: t.concurrency * g.maxShardsInFlight,
        unit: 'teacher requests',
        note: `${summary.counts.generate?.resumedSamples} samples resumed from .partial`,
      };
    },
  },
  {
    stage: 'verify',
    worker: 'cpu',
    activity: 'rejectSample',
    // Pass 1 (verdicts) is done and pass 2 has begun writing accepted/rejects: freeze the worker right there.
    strike: async (_h, runDir) => {
      const dir = path.join(runDir, 'verify');
      await waitFor(
        'rejectSample in its second pass',
        () => {
          const hit =
            filesStarting(dir, '.accepted.jsonl.').length + filesStarting(dir, '.rejects.jsonl.').length > 0 &&
            !existsSync(path.join(dir, 'accepted.jsonl'));
          if (hit) s.freeze('cpu');
          return hit;
        },
        300_000,
        2,
      );
      return {};
    },
    redone: async ({ workflowId, attempts }) => {
      const [r] = await activityResults<{ samplesIn: number; resumedVerdicts?: number }>(
        s.client,
        workflowId,
        'rejectSample',
      );
      // Cheap (math) verdicts are recomputed by design, only judge/code verdicts are cached: the stage is redone.
      return wholeStageRedone(
        'rejectSample',
        attempts,
        `no checkpoint for math verdicts (killed in its 2nd pass); the retry resumed ${r?.resumedVerdicts ?? 0} cached verdicts of ${r?.samplesIn ?? '?'}`,
      );
    },
  },
  {
    stage: 'filter',
    worker: 'cpu',
    activity: 'formatFilter',
    // The first kept sample is being written: freeze the worker there.
    strike: async (_h, runDir) => {
      const dir = path.join(runDir, 'filter');
      await waitFor(
        'formatFilter writing',
        () => {
          const hit = filesStarting(dir, '.sft.jsonl.').length > 0 && !existsSync(path.join(dir, 'sft.jsonl'));
          if (hit) s.freeze('cpu');
          return hit;
        },
        300_000,
        2,
      );
      return {};
    },
    redone: async ({ summary, attempts }) =>
      wholeStageRedone(
        'formatFilter',
        attempts,
        `filter has no checkpoint: the retry re-filtered its ${summary.counts.filter?.in ?? '?'} samples`,
      ),
  },
  {
    stage: 'finetune',
    worker: 'gpu',
    activity: 'fineTune',
    strike: async (h, runDir) => {
      const every = (spec().fineTune as { checkpointEvery: number }).checkpointEvery;
      const target = every + Math.ceil(every / 2);
      // between two checkpoints: the first is written and the trainer is half way to the next
      const at = await waitFor(
        `trainer past step ${target}`,
        () => {
          const t = trainSteps(h.workflowId);
          return t.step >= target ? t : null;
        },
        300_000,
        20,
      );
      return {
        lastStep: at.step,
        trainAttempt: at.attempt,
        checkpoints: listDir(path.join(runDir, 'finetune', 'checkpoints')).filter((f) => f.startsWith('step-')),
        configPath: path.join(runDir, 'finetune', 'config.json'),
      };
    },
    redone: async ({ seen, summary, workflowId }) => {
      const every = (spec().fineTune as { checkpointEvery: number }).checkpointEvery;
      // the last step the killed attempt logged (its trainer may have finished one more before dying on the pipe)
      let killedAt = Number(seen.lastStep);
      for (const l of logLines(path.join(s.tmp, 'gpu-worker.log'))) {
        if (l.msg === 'train step' && l.workflowId === workflowId && Number(l.attempt) === Number(seen.trainAttempt))
          killedAt = Math.max(killedAt, Number(l.step));
      }
      return {
        redone: killedAt - summary.fineTune.resumedFromStep,
        bound: every,
        unit: 'trainer steps',
        note: `killed at step ≥${killedAt}, resumed from step ${summary.fineTune.resumedFromStep}`,
      };
    },
  },
  {
    stage: 'evaluate',
    worker: 'gpu',
    activity: 'evaluate',
    strike: async (_h, runDir) => {
      // the results writer opens its temp file with the first batch of student samples: freeze the worker there
      await waitFor(
        'evaluate running',
        () => {
          const hit = filesStarting(path.join(runDir, 'evaluate'), '.results.jsonl.').length > 0;
          if (hit) s.freeze('gpu');
          return hit;
        },
        300_000,
        2,
      );
      s.freeze('gpu');
      return {};
    },
    redone: async ({ seen, attempts }) => {
      const hb = seen.heartbeat as { model?: string; sample?: number; done?: number } | undefined;
      const at =
        hb?.done !== undefined
          ? `${hb.model} sample ${hb.sample}, ${hb.done} answers in (last heartbeat)`
          : 'before its first progress heartbeat';
      return wholeStageRedone('evaluate', attempts, `evaluate has no checkpoint: killed at ${at}, all redone`);
    },
  },
];

/** When the first attempt after `attempt` of an activity type started (ms since the epoch), from the history. */
async function retryStartedAt(workflowId: string, type: string, attempt: number): Promise<number | null> {
  let first: number | null = null;
  for await (const r of s.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    const history = await s.client.workflow.getHandle(workflowId, r.runId).fetchHistory();
    const types = new Map<string, string>();
    for (const e of history.events ?? []) {
      if (e.activityTaskScheduledEventAttributes)
        types.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
      const st = e.activityTaskStartedEventAttributes;
      if (st && types.get(String(st.scheduledEventId)) === type && (st.attempt ?? 1) > attempt) {
        const t = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
        first = first === null ? t : Math.min(first, t);
      }
    }
  }
  return first;
}

/** The latest fine-tune attempt the GPU worker logged trainer steps for, and its highest step. */
function trainSteps(workflowId: string): { attempt: number; step: number } {
  let attempt = 0;
  let step = 0;
  for (const l of logLines(path.join(s.tmp, 'gpu-worker.log'))) {
    if (l.msg !== 'train step' || l.workflowId !== workflowId) continue;
    const a = Number(l.attempt ?? 1);
    if (a > attempt) [attempt, step] = [a, 0];
    if (a === attempt) step = Math.max(step, Number(l.step ?? 0));
  }
  return { attempt, step };
}

for (const sc of scenarios) {
  const t = want(sc.stage) ? test : test.skip;
  t(
    `SIGKILL the ${sc.worker} worker during ${sc.stage}: the run completes with the fault-free run's outputs`,
    async () => {
      const workflowId = `crash-${sc.stage}-${randomUUID()}`;
      const runDir = runDirFor(spec().artifactRoot as string, workflowId);
      const before = s.teacher.stats().requests;
      const started = Date.now();
      const h = await s.client.workflow.start('distillationWorkflow', {
        taskQueue: 'distillery',
        workflowId,
        args: [spec()],
      });
      const seen = await sc.strike(h, runDir);
      const beats = await pendingHeartbeats(s.client, sc.stage === 'generate' ? `${workflowId}-generate` : workflowId);
      const running = beats.find((b) => b.type === sc.activity);
      seen.heartbeat = running?.details;
      const attemptAtKill = running?.attempt ?? 1;
      await s.kill(sc.worker);
      const killedAt = Date.now();
      let orphans: number[] = [];
      if (sc.stage === 'finetune') {
        // The trainer runs in its own process group: it must not outlive its worker for long (it dies at its next
        // line of output, on the closed pipe). A trainer that lived on would race the retried one on the checkpoints.
        await sleep(3000);
        orphans = processesMatching(String(seen.configPath));
      }
      if (sc.worker === 'cpu') await s.startCpu();
      else await s.startGpu();
      const summary = (await h.result()) as RunSummary;
      const requests = s.teacher.stats().requests - before;
      const outputs = await runOutputs(summary);
      const cmp = compareOutputs(ref.outputs, outputs);
      const attempts = await activityAttempts(s.client, workflowId);
      // the activity was running when the worker died: it completed in a later attempt than the one that was killed
      const landed = !!running && (attempts[sc.activity] ?? []).some((a) => a > attemptAtKill);
      const r = await sc.redone({ seen, summary, requests, workflowId, attempts });
      const account = await accountRun(summary.runDir, (spec().sampling as { n: number }).n);
      if (account.lost || account.duplicated) cmp.problems.push(`accounting: ${accountingProblems(account)}`);
      const retryAt = await retryStartedAt(
        sc.stage === 'generate' ? `${workflowId}-generate` : workflowId,
        sc.activity,
        attemptAtKill,
      );
      const ok = landed && cmp.problems.length === 0 && r.redone <= r.bound && r.redone >= 0 && orphans.length === 0;
      const secs = ((Date.now() - started) / 1000).toFixed(0);
      recordRow({
        fault: `crash: SIGKILL ${sc.worker} worker in ${sc.stage}`,
        runs: 1,
        completed: 1,
        lost: cmp.lost,
        duplicated: cmp.duplicated,
        redone: r.redone,
        bound: r.bound,
        unit: r.unit,
        ok,
        note: [
          landed
            ? `kill landed in ${sc.activity} (attempts ${JSON.stringify(attempts[sc.activity])})`
            : `KILL MISSED ${sc.activity}`,
          r.note,
          orphans.length ? `ORPHAN TRAINER ${orphans.join(',')}` : '',
          cmp.problems.join('; '),
          `${secs} s; retry started ${retryAt ? ((retryAt - killedAt) / 1000).toFixed(1) : '?'} s after the kill, run done ${((Date.now() - killedAt) / 1000).toFixed(0)} s after it`,
        ]
          .filter(Boolean)
          .join('; '),
      });
      expect(landed).toBe(true);
      expect(cmp.problems).toEqual([]);
      expect(r.redone).toBeGreaterThanOrEqual(0);
      expect(r.redone).toBeLessThanOrEqual(r.bound);
      expect(orphans).toEqual([]);
    },
  );
}

const restarts: { when: 'generate' | 'finetune'; signal: NodeJS.Signals }[] = [
  { when: 'generate', signal: 'SIGTERM' },
  { when: 'finetune', signal: 'SIGKILL' },
];

for (const rs of restarts) {
  const t = want(`restart-${rs.when}`) || want('restart') ? test : test.skip;
  t(
    `the Temporal dev server is stopped (${rs.signal}) and restarted during ${rs.when}: the run resumes and completes`,
    async () => {
      const workflowId = `restart-${rs.when}-${randomUUID()}`;
      const before = s.teacher.stats().requests;
      const started = Date.now();
      const h = await s.client.workflow.start('distillationWorkflow', {
        taskQueue: 'distillery',
        workflowId,
        args: [spec()],
      });
      if (rs.when === 'generate') {
        await waitFor('generation under way', async () => ((await progressOf(h))?.generation?.shardsDone ?? 0) >= 2);
      } else {
        await waitFor('fine-tune under way', () => trainSteps(workflowId).step >= 2, 300_000);
      }
      await s.stopServer(rs.signal);
      await sleep(5000); // down for a while: workers and the client see the server gone
      await s.startServer();
      const summary = (await h.result()) as RunSummary;
      const requests = s.teacher.stats().requests - before;
      const cmp = compareOutputs(ref.outputs, await runOutputs(summary));
      const redone = requests - ref.requests;
      const bound =
        (spec().teacher as { concurrency: number }).concurrency *
        (spec().generation as { maxShardsInFlight: number }).maxShardsInFlight;
      const ok = cmp.problems.length === 0 && redone <= bound;
      recordRow({
        fault: `server restart (${rs.signal}) in ${rs.when}`,
        runs: 1,
        completed: 1,
        lost: cmp.lost,
        duplicated: cmp.duplicated,
        redone,
        bound,
        unit: 'teacher requests',
        ok,
        note: [
          cmp.problems.join('; '),
          `fine-tune resumed from step ${summary.fineTune.resumedFromStep}`,
          `${((Date.now() - started) / 1000).toFixed(0)} s`,
        ]
          .filter(Boolean)
          .join('; '),
      });
      expect(cmp.problems).toEqual([]);
      expect(redone).toBeLessThanOrEqual(bound);
    },
  );
}

const t0 = want('repro') ? test : test.skip;
t0(
  'two fault-free runs of one spec with several request lanes per shard give the same SFT file and the same student',
  async () => {
    // The same spec as the crash scenarios but for teacher.concurrency 4: samples are appended to a shard as prompts
    // complete, so without a sort their order follows the teacher's timing, and the trainer's batches with it.
    const spec4 = (name: string) =>
      chaosSpec(s, name, {
        teacher: { ...(spec().teacher as object), concurrency: 4 },
        fineTune: { ...(spec().fineTune as object), maxSteps: 6, checkpointEvery: 6 },
        evaluation: {
          benchmark: { type: 'builtin', task: 'arithmetic', count: 8, seed: 2 },
          k: 1,
          maxNewTokens: 32,
          baseline: false,
        },
      });
    const runs: RunSummary[] = [];
    let retries = 0; // activity attempts beyond the first, in both runs' histories: a fault-free run redoes nothing
    for (const i of [1, 2]) {
      const workflowId = `repro-${i}-${randomUUID()}`;
      runs.push(
        (await s.client.workflow.execute('distillationWorkflow', {
          taskQueue: 'distillery',
          workflowId,
          args: [spec4(SPEC_NAME)],
        })) as RunSummary,
      );
      for (const a of Object.values(await activityAttempts(s.client, workflowId)))
        retries += a.reduce((t, n) => t + n - 1, 0);
    }
    const [a, b] = await Promise.all(runs.map((r) => runOutputs(r)));
    const cmp = compareOutputs(a!, b!);
    const order = (r: RunSummary, f: string) =>
      readFileSync(path.join(r.runDir, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { id: string }).id);
    const moved = (f: string) => order(runs[0]!, f).filter((id, i) => order(runs[1]!, f)[i] !== id).length;
    const samplesMoved = moved('generate/samples.jsonl');
    const sftMoved = moved('filter/sft.jsonl');
    const ok = cmp.problems.length === 0 && samplesMoved === 0 && sftMoved === 0 && retries === 0;
    recordRow({
      fault: 'none: two fault-free runs, teacher.concurrency 4',
      runs: 2,
      completed: 2,
      lost: cmp.lost,
      duplicated: cmp.duplicated,
      redone: retries,
      bound: 0,
      unit: 'activity retries',
      ok,
      note: ok
        ? 'byte-identical SFT, same student'
        : `same ids, but ${samplesMoved} samples / ${sftMoved} SFT rows in a different order; ${cmp.problems.join('; ')}`,
    });
    expect({ samplesMoved, sftMoved }).toEqual({ samplesMoved: 0, sftMoved: 0 });
    expect(cmp.problems).toEqual([]);
  },
);
