import { ApplicationFailure } from '@temporalio/common';
import { exists, refOfFile, writeJsonAtomic } from '../artifacts/store';
import type { FineTuneInput, FineTuneResult } from './fine-tune';
import type { TrainerEvent } from './trainer-process';

/** Trainer processes per node: a cluster node's GPUs; on CPU-only slots or nodes distributed.processesPerNode. */
export function processesPerNode(ft: FineTuneInput['fineTune']): number | undefined {
  if (ft.cluster?.gpusPerNode) return ft.cluster.gpusPerNode;
  return ft.distributed.processesPerNode;
}

/**
 * Exit 2 is bad data, a bad config, a student whose chat template fails the checks or one that cannot fit in memory;
 * exit 3 a loss that went NaN/inf. A retry would fail the same way; a crash, an OOM kill or a lost worker would not.
 */
export function trainerFailure(exitCode: number | null, msg: string, stderrTail: string): Error {
  if (exitCode === 2) {
    const type = /student does not fit/i.test(stderrTail)
      ? 'StudentDoesNotFit'
      : /invalid student/i.test(stderrTail)
        ? 'InvalidStudent'
        : /invalid config/i.test(stderrTail)
          ? 'InvalidTrainerConfig'
          : 'InvalidTrainingData';
    return ApplicationFailure.nonRetryable(msg, type);
  }
  if (exitCode === 3) return ApplicationFailure.nonRetryable(msg, 'TrainingDiverged');
  if (exitCode === 4) return ApplicationFailure.nonRetryable(msg, 'TokenizerMismatch');
  return new Error(msg);
}

/** The activity's result from the trainer's `done` event; written to result.json so a later attempt returns it. */
export async function trlResult(
  done: TrainerEvent,
  fallback: { lastStep: number; lastLoss: number | null; resumedFromStep: number; tokensPerSecond: number | null },
  resultPath: string,
): Promise<FineTuneResult> {
  // The exports are hundreds of MB: history carries their paths (as the model dirs), not their hashes.
  const file = async (v: unknown) => (typeof v === 'string' && v && (await exists(v)) ? v : undefined);
  const [onnx, gguf, baselineGguf, cardPath] = await Promise.all([
    file(done.onnx),
    file(done.gguf),
    file(done.baseline_gguf),
    file(done.model_card),
  ]);
  const modelCard = cardPath ? await refOfFile(cardPath) : undefined;
  const result: FineTuneResult = {
    modelDir: String(done.model_dir),
    baselineModelDir: String(done.baseline_model_dir),
    steps: Number(done.step ?? fallback.lastStep),
    finalLoss: done.final_loss === undefined || done.final_loss === null ? fallback.lastLoss : Number(done.final_loss),
    resumedFromStep: fallback.resumedFromStep,
    tokensPerSecond: typeof done.tokens_per_s === 'number' ? done.tokens_per_s : fallback.tokensPerSecond,
    report: await refOfFile(String(done.report)),
    studentKind: 'hf',
    ...(onnx ? { onnx } : {}),
    ...(gguf ? { gguf } : {}),
    ...(baselineGguf ? { baselineGguf } : {}),
    ...(modelCard ? { modelCard } : {}),
  };
  await writeJsonAtomic(resultPath, result);
  return result;
}
