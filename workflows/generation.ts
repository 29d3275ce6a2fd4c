import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { CpuActivities } from '../activities';
import type { RunSpec } from '../schemas/run-spec';
import { budgetShareUSD, costUSD } from '../core/cost';
import {
  generationProgressSignal,
  generationTallyQuery,
  pauseSignal,
  resumeSignal,
  teacherLimitsSignal,
  type GenerationTally,
} from './messages';

export interface GenerationInput {
  runDir: string;
  parentWorkflowId: string;
  shardCount: number;
  teacher: RunSpec['teacher'];
  sampling: RunSpec['sampling'];
  /** Only with sampling.adaptive: the shards verify their samples as they arrive. */
  verifier?: RunSpec['verifier'];
  maxShardsInFlight: number;
  cpuQueue: string;
  heartbeatSeconds: number;
  stageHours: number;
  /** Shards below this index are finished (carried over by continue-as-new). */
  nextShard: number;
  tally: GenerationTally;
  /** Continue-as-new once history holds this many events (or when the server suggests it). */
  maxHistoryEvents: number;
  /** Carried over by continue-as-new when the run was paused at that point. */
  paused?: boolean;
}

/** At most this many progress signals to the parent per generation (plus one at each continue-as-new and the last). */
const PROGRESS_SIGNALS = 100;

/**
 * Fans generation out over prompt shards with a sliding window of at most `maxShardsInFlight` activities.
 * History grows with every shard, so the workflow drains its window and continues as new before it gets large:
 * a run of 100,000 prompts never comes near Temporal's history limits. With a budget, no new shard starts once it is
 * spent; the shards in flight finish (so the overshoot is at most one window of shards) and shards [0, shardsDone)
 * are the usable result. Adaptive shards also get a share of the budget each (see shareFor), so every shard's
 * prompts get their first round and its promising prompts their further rounds before the money runs out.
 */
export async function generationWorkflow(input: GenerationInput): Promise<GenerationTally> {
  // A shard attempt already rides out short outages inside the teacher client (teacher.maxRetries, with backoff and
  // Retry-After); these retries are for longer ones (a model server restarting) and for lost workers. 15 attempts
  // with backoff capped at 30 s give a teacher ~5 minutes to come back; one that is down for good fails the run
  // after ~6 minutes with the endpoint, model and last HTTP status in the error (before: 20 attempts, ~15 minutes).
  const retry: RetryPolicy = patched('generate-shard-retry-bounds')
    ? { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 15 }
    : { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 };
  const { generateShard } = proxyActivities<CpuActivities>({
    taskQueue: input.cpuQueue,
    startToCloseTimeout: input.stageHours * 3_600_000,
    heartbeatTimeout: input.heartbeatSeconds * 1000,
    retry,
  });
  const tally = { ...input.tally };
  setHandler(generationTallyQuery, () => tally);
  let paused = input.paused ?? false;
  setHandler(pauseSignal, () => void (paused = true));
  setHandler(resumeSignal, () => void (paused = false));
  // Limits changed while running apply to the shards started afterwards (and travel through continue-as-new).
  const teacher = { ...input.teacher };
  let maxShardsInFlight = input.maxShardsInFlight;
  setHandler(teacherLimitsSignal, (limits) => {
    if (limits.maxInFlight) teacher.maxInFlight = limits.maxInFlight;
    if (limits.concurrency) teacher.concurrency = limits.concurrency;
    if (limits.maxShardsInFlight) maxShardsInFlight = limits.maxShardsInFlight;
  });
  // Without a parent (generation started on its own, e.g. by bench/generate) progress is only queryable here.
  const parent = input.parentWorkflowId ? getExternalWorkflowHandle(input.parentWorkflowId) : null;
  // Progress signals cost the parent ~4 history events each: one per finished shard made a 1,000-shard run's parent
  // history ~3,800 events longer. Now one per 1% of the shards (every shard for runs of up to 100 shards), plus the
  // last one, so the parent's history no longer grows with the number of shards.
  const throttled = patched('generation-progress-throttle');
  const signalEvery = throttled ? Math.max(1, Math.ceil(input.shardCount / PROGRESS_SIGNALS)) : 1;
  let signalled = input.tally.shardsDone;
  const report = async (force: boolean) => {
    if (!parent || (!force && tally.shardsDone - signalled < signalEvery) || tally.shardsDone === signalled) return;
    signalled = tally.shardsDone;
    await parent.signal(generationProgressSignal, { ...tally });
  };
  const pending = new Map<number, Promise<void>>();
  let next = input.nextShard;
  const historyFull = () =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= input.maxHistoryEvents;
  const budget = input.teacher.budgetUSD;
  const overBudget = () => budget !== undefined && tally.costUSD >= budget;
  // Adaptive shards get a share of the budget each and spend it on their most promising prompts first.
  const shares =
    budget !== undefined && input.sampling.adaptive && input.teacher.pricing && patched('adaptive-budget-share');
  const reserved = new Map<number, number>();
  const shareFor = (shardIndex: number) =>
    budgetShareUSD({
      budgetUSD: budget!,
      spentUSD: tally.costUSD,
      heldUSD: [...reserved.values()].reduce((a, b) => a + b, 0),
      shardCount: input.shardCount,
      shardIndex,
    });

  while ((next < input.shardCount && !tally.stoppedByBudget) || pending.size) {
    if (overBudget()) tally.stoppedByBudget = true;
    if (paused && !pending.size) await condition(() => !paused);
    while (
      !paused &&
      pending.size < maxShardsInFlight &&
      next < input.shardCount &&
      !historyFull() &&
      !tally.stoppedByBudget
    ) {
      const share = shares ? shareFor(next) : undefined;
      // Nothing left to share out: wait for the shards in flight to hand back what they did not spend, or stop.
      if (share !== undefined && share <= 0) {
        if (!pending.size) tally.stoppedByBudget = true;
        break;
      }
      const shardIndex = next++;
      if (share !== undefined) reserved.set(shardIndex, share);
      pending.set(
        shardIndex,
        generateShard({
          runDir: input.runDir,
          shardIndex,
          teacher: { ...teacher },
          sampling: input.sampling,
          ...(input.verifier ? { verifier: input.verifier } : {}),
          ...(share !== undefined
            ? { budget: { shareUSD: share, ...(tally.samples ? { usdPerSample: tally.costUSD / tally.samples } : {}) } }
            : {}),
        }).then(async (r) => {
          pending.delete(shardIndex);
          reserved.delete(shardIndex);
          tally.shardsDone += 1;
          tally.prompts += r.prompts;
          tally.samples += r.samples;
          tally.requests += r.requests;
          tally.promptTokens += r.promptTokens;
          tally.completionTokens += r.completionTokens;
          tally.resumedSamples += r.resumedSamples;
          tally.costUSD = costUSD(tally, input.teacher.pricing);
          tally.projectedCostUSD = (tally.costUSD / tally.shardsDone) * input.shardCount;
          if (overBudget()) tally.stoppedByBudget = true;
          if (throttled) await report(tally.shardsDone === input.shardCount);
          else await parent?.signal(generationProgressSignal, { ...tally });
        }),
      );
    }
    if (!pending.size) break;
    await Promise.race(pending.values());
    if (!pending.size && next < input.shardCount && !tally.stoppedByBudget && historyFull()) {
      if (throttled) await report(true);
      await continueAsNew<typeof generationWorkflow>({
        ...input,
        teacher,
        maxShardsInFlight,
        paused,
        nextShard: next,
        tally,
      });
    }
  }
  if (throttled) await report(true);
  return tally;
}
