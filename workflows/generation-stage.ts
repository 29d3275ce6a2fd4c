import { startChild } from '@temporalio/workflow';
import type { CpuActivities } from '../activities';
import { generationWorkflow } from './generation';
import { emptyGenerationTally, pauseSignal, resumeSignal, teacherLimitsSignal, type GenerationTally } from './messages';
import { generationIdOf, type RunControl } from './run-control';
import type { Run } from './run-context';

export type MergedSamples = Awaited<ReturnType<CpuActivities['mergeShards']>>;

/**
 * The generate stage: the generation child fans the prompt shards out to the teacher (with the limits and pause
 * state in force when it starts, and whatever changed while it was being started), then one merge of its shards.
 */
export async function generate(
  run: Run,
  control: RunControl,
  prepared: { runDir: string; shardCount: number },
): Promise<{ tally: GenerationTally; merged: MergedSamples }> {
  const { spec } = run;
  const { progress } = control;
  const emptyTally = emptyGenerationTally(prepared.shardCount);
  progress.generation = emptyTally;
  const limits = progress.teacherLimits ?? {};
  const pausedAtStart = progress.paused;
  const child = await startChild(generationWorkflow, {
    workflowId: generationIdOf(run.workflowId),
    args: [
      {
        runDir: prepared.runDir,
        parentWorkflowId: run.workflowId,
        shardCount: prepared.shardCount,
        teacher: {
          ...spec.teacher,
          ...(limits.maxInFlight ? { maxInFlight: limits.maxInFlight } : {}),
          ...(limits.concurrency ? { concurrency: limits.concurrency } : {}),
        },
        sampling: spec.sampling,
        ...(spec.sampling.adaptive ? { verifier: spec.verifier } : {}),
        maxShardsInFlight: limits.maxShardsInFlight ?? spec.generation.maxShardsInFlight,
        cpuQueue: spec.taskQueues.cpu,
        heartbeatSeconds: spec.timeouts.heartbeatSeconds,
        stageHours: spec.timeouts.stageHours,
        nextShard: 0,
        tally: emptyTally,
        maxHistoryEvents: spec.generation.maxHistoryEvents,
        paused: pausedAtStart,
      },
    ],
  });
  // A pause or a limit change that arrived while the child was being started reaches it now.
  if (progress.paused !== pausedAtStart) await child.signal(progress.paused ? pauseSignal : resumeSignal);
  if (progress.teacherLimits && progress.teacherLimits !== limits)
    await child.signal(teacherLimitsSignal, progress.teacherLimits);
  const tally = await child.result();
  progress.generation = tally;
  // After a budget stop only the first shardsDone shards exist (all started shards are drained first).
  const merged = await run.cpu.mergeShards({
    runDir: prepared.runDir,
    shardCount: tally.stoppedByBudget ? tally.shardsDone : prepared.shardCount,
  });
  progress.tokens = { prompt: merged.promptTokens, completion: merged.completionTokens };
  progress.counts.generate = {
    prompts: merged.prompts,
    samples: merged.samples.count,
    requests: tally.requests,
    resumedSamples: tally.resumedSamples,
    shardsDone: tally.shardsDone,
    shardCount: prepared.shardCount,
    costUSD: tally.costUSD,
    stoppedByBudget: tally.stoppedByBudget ? 1 : 0,
  };
  return { tally, merged };
}
