import { randomUUID } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { prepareDataset } from '../../activities/prepare/prepare-dataset';
import { adaptivePlanOf, stopReason, type StopRecord } from '../../activities/generate/adaptive-sampling';
import { generateShard, shardSamplingFile } from '../../activities/generate/generate-shard';
import { generationConfigHash, promptSeed, sampleId } from '../../activities/generate/sample-ids';
import { layout } from '../../activities/artifacts/layout';
import { readJsonl, readJsonlLines } from '../../activities/artifacts/store';
import { verifyMath } from '../../activities/verify/math';
import { DatasetSchema, SamplingSchema, TeacherSchema, VerifierSchema } from '../../schemas/run-spec';
import type { PromptRow, SampleRow } from '../../schemas/artifact';
import type { GenerationInput } from '../../workflows/generation';
import { emptyGenerationTally } from '../../workflows/messages';
import { startSolveRateEndpoint, type SolveRateEndpoint } from '../../bench/sampling/solve-rate-endpoint';
import { activityAttempts, failureMessage, listDir, useChaosStack, waitFor, type ChaosStack } from './harness';
import { recordRow } from './table';

/**
 * SIGKILL of the CPU worker mid-round with adaptive sampling on, through the real generation workflow on the dev
 * server. The teacher is the solve-rate endpoint (a test double; 150 ms per answer, so rounds are in flight at the
 * kill). Counted afterwards, from disk: every prompt's committed samples are exactly indices 0..drawn-1 of its stop
 * record (none lost, none twice), and replaying the stopping rule over the committed samples' verdicts stops exactly
 * there; from the teacher's request log: no request whose answer was on disk at the kill was asked again (requests
 * answered but not yet written when the worker died are the only ones asked twice, and are counted).
 */

jest.setTimeout(900_000);

const PROMPTS = 48;
const SHARD = 24;
const CONCURRENCY = 4;
const ADAPTIVE = { minSamples: 1, maxSamples: 8, roundSize: 2, stopAfterAccepted: 1 };

let s: ChaosStack;
useChaosStack('adaptive', { gpu: false }, { started: (stack) => void (s = stack) });

/** Sample ids in complete lines of the shards' attempt files (what a retry finds on disk). */
async function idsInAttemptFiles(dir: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const f of listDir(dir).filter((x) => x.endsWith('.partial'))) {
    let text = '';
    try {
      for await (const chunk of createReadStream(path.join(dir, f), { encoding: 'utf8' })) text += chunk;
    } catch {
      continue;
    }
    const lines = text.split('\n');
    lines.pop(); // a torn last line is not a line yet
    for (const l of lines) {
      try {
        const row = JSON.parse(l) as { id?: unknown };
        if (typeof row.id === 'string') ids.add(row.id);
      } catch {
        /* a corrupt line is counted by the shard's own reader */
      }
    }
  }
  return ids;
}

/** Each shard's committed samples (id and text, in order) and stop records, to compare two runs of the same shards. */
async function shardContents(runDir: string, shardCount: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < shardCount; i++) {
    const final = layout.shardSamples(runDir, i);
    for await (const r of readJsonl<SampleRow>(final)) out.push(`${r.id} ${JSON.stringify(r.content)}`);
    for await (const st of readJsonl<StopRecord['stopped']>(shardSamplingFile(final))) out.push(JSON.stringify(st));
  }
  return out;
}

// $1 per completion token, so that a spend reads as tokens.
const PRICING = { inputPerMTokens: 0, outputPerMTokens: 1_000_000 };

test.each([
  ['adaptive sampling', false],
  ['adaptive sampling within a budget', true],
])(
  'SIGKILL the cpu worker mid-round with %s: 0 lost, 0 duplicated, 0 answered requests asked again',
  async (what, budgeted) => {
    const teacher: SolveRateEndpoint = await startSolveRateEndpoint({ delayMs: 150, seed: 5 });
    // The same teacher without the delay, for the fault-free references run in this process.
    const quiet: SolveRateEndpoint = await startSolveRateEndpoint({ seed: 5 });
    try {
      const data = path.join(s.tmp, 'adaptive-prompts.jsonl');
      const rows = Array.from({ length: PROMPTS }, (_, i) => ({
        id: `a${i}`,
        prompt: `Compute ${100 + i * 7}+${200 + i * 11}.`,
        answer: String(300 + i * 18),
      }));
      writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
      const runId = `adaptive-${randomUUID()}`;
      const prepare = (id: string) =>
        prepareDataset({
          artifactRoot: path.join(s.tmp, 'artifacts'),
          runId: id,
          dataset: DatasetSchema.parse({ source: { type: 'jsonl', path: data } }),
          shardSize: SHARD,
        });
      const prepared = await prepare(runId);
      const verifier = VerifierSchema.parse({ type: 'math', keepPerPrompt: 1 });
      const teacherSpec = TeacherSchema.parse({
        baseURL: teacher.url,
        model: 'solve-rate-sim',
        concurrency: CONCURRENCY,
        maxRetries: 3,
        requestTimeoutSeconds: 30,
        pricing: PRICING,
      });
      const sampling = SamplingSchema.parse({ temperature: 1, max_tokens: 4096, seed: 3, adaptive: ADAPTIVE });
      /** A fault-free run of every shard in this process, each with `shareUSD` when given. */
      const reference = async (shareUSD?: number) => {
        const ref = await prepare(`${runId}-ref-${shareUSD ?? 'free'}`);
        let spend = 0;
        for (let i = 0; i < ref.shardCount; i++) {
          const g = await generateShard({
            runDir: ref.runDir,
            shardIndex: i,
            teacher: { ...teacherSpec, baseURL: quiet.url },
            sampling,
            verifier,
            ...(shareUSD !== undefined ? { budget: { shareUSD } } : {}),
          });
          spend += g.completionTokens;
        }
        return { runDir: ref.runDir, spend };
      };
      // Half of what the shards spend without a budget; both shards start at once, so each gets half of it.
      const budgetUSD = budgeted ? (await reference()).spend / 2 : undefined;
      const input: GenerationInput = {
        runDir: prepared.runDir,
        parentWorkflowId: '',
        shardCount: prepared.shardCount,
        teacher: { ...teacherSpec, ...(budgetUSD !== undefined ? { budgetUSD } : {}) },
        sampling,
        verifier,
        maxShardsInFlight: 2,
        cpuQueue: 'distillery-cpu',
        heartbeatSeconds: 3,
        stageHours: 1,
        nextShard: 0,
        tally: emptyGenerationTally(prepared.shardCount),
        maxHistoryEvents: 8000,
      };
      const h = await s.client.workflow.start('generationWorkflow', {
        taskQueue: 'distillery',
        workflowId: runId,
        args: [input],
      });
      const dir = path.join(prepared.runDir, 'generate');
      await waitFor('20 rounds answered', () => teacher.log.filter((q) => q.answered).length >= 20, 120_000, 10);
      await s.kill('cpu');
      // requests in flight at the kill are still answered (into a closed socket) within the endpoint's delay
      await new Promise((r) => setTimeout(r, 500));
      const killIndex = teacher.log.length;
      const onDiskAtKill = await idsInAttemptFiles(dir);
      const committedAtKill = listDir(dir).filter((f) => /^shard-\d+\.jsonl$/.test(f)).length;
      await s.startCpu();
      const error = await h.result().then(
        () => null,
        (e: Error) => failureMessage((e as { cause?: never }).cause) || e.message,
      );

      // Which prompt and round each request was: its seed is promptSeed(seed, promptId, round).
      const hash = generationConfigHash(input);
      const plan = adaptivePlanOf(input.sampling.adaptive!, verifier.keepPerPrompt);
      const rounds = Math.ceil(plan.maxSamples / plan.roundSize);
      const roundOfKey = new Map<string, { id: string; round: number }>();
      for (const r of rows)
        for (let k = 0; k < rounds; k++)
          roundOfKey.set(`${r.prompt}|${promptSeed(input.sampling.seed, r.id, k)}`, { id: r.id, round: k });
      const keyOf = (q: SolveRateEndpoint['log'][number]) => `${q.prompt}|${q.seed}`;
      const roundOnDisk = (key: string) => {
        const r = roundOfKey.get(key);
        if (!r) return false;
        const size = Math.min(plan.roundSize, plan.maxSamples - r.round * plan.roundSize);
        return Array.from({ length: size }, (_, i) => sampleId(r.id, r.round * plan.roundSize + i, hash)).every((id) =>
          onDiskAtKill.has(id),
        );
      };
      const before = teacher.log.slice(0, killIndex).filter((q) => q.answered);
      const after = teacher.log.slice(killIndex).filter((q) => q.answered);
      const recorded = new Set(before.map(keyOf).filter(roundOnDisk));
      const repeatedAnswered = after.filter((q) => recorded.has(keyOf(q))).length;
      const reaskedInFlight = after.filter(
        (q) => !recorded.has(keyOf(q)) && before.some((b) => keyOf(b) === keyOf(q)),
      ).length;
      const allKeys = teacher.log.filter((q) => q.answered).map(keyOf);

      // From the committed shards: exactly indices 0..drawn-1 of each prompt, and drawn is where the rule stops.
      let lost = 0;
      let duplicated = 0;
      let wrongStops = 0;
      let committed = 0;
      for (let i = 0; i < prepared.shardCount; i++) {
        const final = layout.shardSamples(prepared.runDir, i);
        const stops = new Map<string, StopRecord['stopped']>();
        for await (const st of readJsonl<StopRecord['stopped']>(shardSamplingFile(final))) stops.set(st.promptId, st);
        const seen = new Map<string, SampleRow>();
        for await (const l of readJsonlLines(final)) {
          const row = JSON.parse(l.text) as SampleRow;
          committed += 1;
          if (seen.has(row.id)) duplicated += 1;
          seen.set(row.id, row);
        }
        for await (const p of readJsonl<PromptRow>(layout.shardPrompts(prepared.runDir, i))) {
          const st = stops.get(p.id);
          if (!st) {
            lost += 1;
            continue;
          }
          let accepted = 0;
          let stoppedAt: { drawn: number; reason: string } | null = null;
          for (let k = 0; k < st.drawn; k++) {
            const row = seen.get(sampleId(p.id, k, hash));
            if (!row) {
              lost += 1;
              continue;
            }
            seen.delete(row.id);
            if (verifyMath(row.content, row.answer).verdict === 'correct') accepted += 1;
            const drawn = k + 1;
            if (drawn % plan.roundSize === 0 || drawn === plan.maxSamples) {
              const reason = stopReason(plan, drawn, accepted);
              if (reason && !stoppedAt) stoppedAt = { drawn, reason };
            }
          }
          // A budget stop comes before the rule would have stopped; any other stop is where the rule stops.
          if (
            st.reason === 'budget'
              ? stoppedAt !== null
              : stoppedAt?.drawn !== st.drawn || stoppedAt.reason !== st.reason
          )
            wrongStops += 1;
          // samples of this prompt beyond its stop record should not be in the shard
          for (const id of [...seen.keys()]) if (id.startsWith(`${p.id}#`)) duplicated += 1;
        }
      }
      // Within a budget: the same samples and the same stops as a fault-free run with the same shares.
      let differing = 0;
      let budgetStops = 0;
      if (budgetUSD !== undefined) {
        const ref = await reference(budgetUSD / prepared.shardCount);
        const want = await shardContents(ref.runDir, prepared.shardCount);
        const got = await shardContents(prepared.runDir, prepared.shardCount);
        differing = want.filter((x) => !got.includes(x)).length + got.filter((x) => !want.includes(x)).length;
        budgetStops = got.filter((x) => x.includes('"reason":"budget"')).length;
      }
      const attempts = (await activityAttempts(s.client, runId)).generateShard ?? [];
      const retried = attempts.filter((a) => a >= 2).length;
      const ok =
        !error &&
        lost === 0 &&
        duplicated === 0 &&
        wrongStops === 0 &&
        differing === 0 &&
        (!budgeted || budgetStops > 0) &&
        repeatedAnswered === 0 &&
        retried >= 1 &&
        committedAtKill < prepared.shardCount;
      recordRow({
        fault: `crash: SIGKILL cpu worker mid-round, ${what}`,
        runs: 1,
        completed: error ? 0 : 1,
        lost,
        duplicated,
        redone: repeatedAnswered + reaskedInFlight,
        bound: CONCURRENCY * input.maxShardsInFlight,
        unit: 'teacher requests',
        ok,
        note: `${committed} samples committed; ${repeatedAnswered} answered-and-written rounds asked again; ${reaskedInFlight} rounds in flight at the kill asked again; ${wrongStops} prompts whose stop differs from the rule; ${budgeted ? `${budgetStops} budget stops, ${differing} lines differing from a fault-free run with the same shares; ` : ''}${allKeys.length} answered requests; shards retried: ${retried}${error ? `; error: ${error}` : ''}`,
      });
      expect(error).toBeNull();
      expect(committedAtKill).toBeLessThan(prepared.shardCount);
      expect(retried).toBeGreaterThanOrEqual(1);
      expect(lost).toBe(0);
      expect(duplicated).toBe(0);
      expect(wrongStops).toBe(0);
      expect(differing).toBe(0);
      if (budgeted) expect(budgetStops).toBeGreaterThan(0);
      expect(repeatedAnswered).toBe(0);
      expect(reaskedInFlight).toBeLessThanOrEqual(CONCURRENCY * input.maxShardsInFlight);
    } finally {
      await teacher.close();
      await quiet.close();
    }
  },
);
