import type { SampleRow } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';

/** `sampling.adaptive` with its defaults resolved (stopAfterAccepted from the verifier's keepPerPrompt). */
export interface AdaptivePlan {
  minSamples: number;
  maxSamples: number;
  stopAfterAccepted: number;
  roundSize: number;
  giveUpAfter?: number;
}

/**
 * Why a prompt's sampling stopped: enough correct samples, the cap reached, given up as hopeless, or its next round
 * not affordable within the shard's share of teacher.budgetUSD.
 */
export type StopReason = 'target' | 'max_samples' | 'gave_up' | 'budget';

/**
 * The line an attempt appends (with the prompt's last round) once a prompt has stopped. The samples the shard commits
 * for the prompt are exactly indices 0..drawn-1: the record is what makes the expected set of an adaptive shard known.
 */
export interface StopRecord {
  stopped: {
    promptId: string;
    configHash: string;
    reason: StopReason;
    drawn: number;
    accepted: number;
    completionTokens: number;
  };
}

export function adaptivePlanOf(
  adaptive: NonNullable<RunSpec['sampling']['adaptive']>,
  keepPerPrompt: number,
): AdaptivePlan {
  return {
    minSamples: adaptive.minSamples,
    maxSamples: adaptive.maxSamples,
    stopAfterAccepted: adaptive.stopAfterAccepted ?? keepPerPrompt,
    roundSize: adaptive.roundSize,
    ...(adaptive.giveUpAfter !== undefined ? { giveUpAfter: adaptive.giveUpAfter } : {}),
  };
}

/** Round r's sample indices: [start, start + size), the last round cut at maxSamples. */
export function roundOf(plan: AdaptivePlan, round: number): { start: number; size: number } {
  const start = round * plan.roundSize;
  return { start, size: Math.max(0, Math.min(plan.roundSize, plan.maxSamples - start)) };
}

/** Decided after whole rounds only, so the decision depends on the verdicts and never on timing. */
export function stopReason(plan: AdaptivePlan, drawn: number, accepted: number): StopReason | null {
  if (drawn >= plan.minSamples && accepted >= plan.stopAfterAccepted) return 'target';
  if (drawn >= plan.maxSamples) return 'max_samples';
  if (plan.giveUpAfter !== undefined && drawn >= plan.giveUpAfter && accepted === 0) return 'gave_up';
  return null;
}

export interface AdaptivePromptIO {
  /** The sample already written (by this or an earlier attempt) at this index, if any. */
  onDisk(sampleIndex: number): Promise<SampleRow | undefined>;
  /** Asks the teacher for round `round`; returns exactly the rows of `missing` (in any order). */
  ask(round: number, missing: number[]): Promise<SampleRow[]>;
  verify(row: SampleRow): Promise<boolean>;
  /** Appends the round's new rows and, when the prompt has stopped, its stop record, in one write. */
  write(rows: SampleRow[], stop: StopRecord | null): Promise<void>;
}

/** A prompt's sampling so far: the rounds done and what their samples hold. */
export interface PromptProgress {
  rounds: number;
  drawn: number;
  accepted: number;
  promptTokens: number;
  completionTokens: number;
}

export const noProgress = (): PromptProgress => ({
  rounds: 0,
  drawn: 0,
  accepted: 0,
  promptTokens: 0,
  completionTokens: 0,
});

export function stopRecordOf(
  promptId: string,
  configHash: string,
  reason: StopReason,
  progress: PromptProgress,
): StopRecord {
  const { drawn, accepted, completionTokens } = progress;
  return { stopped: { promptId, configHash, reason, drawn, accepted, completionTokens } };
}

/**
 * Samples a prompt's next round. A round whose samples are all on disk is not asked again, and a sample on disk keeps
 * the verdict it was written with (`roundCorrect`), so a resumed prompt repeats no answered request and reaches the
 * same decisions a run without the fault would have.
 */
export async function sampleNextRound(
  promptId: string,
  configHash: string,
  plan: AdaptivePlan,
  io: AdaptivePromptIO,
  before: PromptProgress,
): Promise<{ progress: PromptProgress; stop: StopRecord | null }> {
  const { start, size } = roundOf(plan, before.rounds);
  if (size <= 0)
    throw new Error(`adaptive sampling of ${promptId} ran past maxSamples ${plan.maxSamples} without stopping`);
  const rows: SampleRow[] = [];
  const missing: number[] = [];
  for (let i = start; i < start + size; i++) {
    const row = await io.onDisk(i);
    if (row) rows.push(row);
    else missing.push(i);
  }
  const fresh = missing.length ? await io.ask(before.rounds, missing) : [];
  const progress = { ...before, rounds: before.rounds + 1, drawn: start + size };
  for (const row of fresh) row.roundCorrect = await io.verify(row);
  for (const row of [...rows, ...fresh]) {
    if (row.roundCorrect ?? (await io.verify(row))) progress.accepted += 1;
    progress.promptTokens += row.usage.promptTokens;
    progress.completionTokens += row.usage.completionTokens;
  }
  const reason = stopReason(plan, progress.drawn, progress.accepted);
  const stop = reason ? stopRecordOf(promptId, configHash, reason, progress) : null;
  if (fresh.length || stop)
    await io.write(
      fresh.sort((a, b) => a.sampleIndex - b.sampleIndex),
      stop,
    );
  return { progress, stop };
}

/** Samples one prompt in rounds until it stops (see sampleNextRound). */
export async function samplePromptAdaptively(
  promptId: string,
  configHash: string,
  plan: AdaptivePlan,
  io: AdaptivePromptIO,
): Promise<StopRecord> {
  let progress = noProgress();
  for (;;) {
    const next = await sampleNextRound(promptId, configHash, plan, io, progress);
    if (next.stop) return next.stop;
    progress = next.progress;
  }
}

export function isStopRecord(row: unknown): row is StopRecord {
  const s = (row as Partial<StopRecord> | null)?.stopped;
  return (
    !!s &&
    typeof s === 'object' &&
    typeof s.promptId === 'string' &&
    typeof s.configHash === 'string' &&
    Number.isInteger(s.drawn) &&
    s.drawn >= 0
  );
}
