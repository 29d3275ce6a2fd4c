import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ArtifactRef } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { pythonBin, trainerScript } from '../../infra/paths';
import { currentActivity } from '../activity-context';
import { exists, pathOf, refOfFile, verifyRef, writeJsonAtomic } from '../artifacts/store';
import { runTrainer, type TrainerEvent } from './trainer-process';

export interface FineTuneInput {
  runDir: string;
  sft: ArtifactRef;
  fineTune: RunSpec['fineTune'];
}

export interface FineTuneResult {
  modelDir: string;
  /** The student before training (same seed, same init): the evaluation baseline. */
  baselineModelDir: string;
  steps: number;
  finalLoss: number | null;
  resumedFromStep: number;
  tokensPerSecond: number | null;
  report: ArtifactRef;
}

/** The slot a GPU worker gives each activity: which devices the trainer may see ('' = CPU only). */
export interface DeviceSlot {
  cudaVisibleDevices: string;
  threads?: number;
}

/**
 * Fine-tunes the student on the SFT dataset in a trainer subprocess. Progress streams into heartbeats; the trainer
 * checkpoints every N steps and, on a retry after a crash or a lost worker, resumes from its last complete checkpoint.
 * Cancellation stops the trainer's whole process group and keeps the last checkpoint.
 */
export function createFineTune(slot: DeviceSlot) {
  return async function fineTune(input: FineTuneInput): Promise<FineTuneResult> {
    await verifyRef(input.sft);
    const outDir = path.join(input.runDir, 'finetune');
    const modelDir = path.join(outDir, 'model');
    const baselineModelDir = path.join(outDir, 'baseline-model');
    const reportPath = path.join(outDir, 'train_report.json');
    const resultPath = path.join(outDir, 'result.json');
    if (await exists(resultPath)) return JSON.parse(await fs.readFile(resultPath, 'utf8')) as FineTuneResult;

    const ft = input.fineTune;
    const config = {
      data: pathOf(input.sft),
      output_dir: outDir,
      model: { d_model: ft.model.dModel, n_layer: ft.model.nLayer, n_head: ft.model.nHead, max_len: ft.model.maxLen },
      epochs: ft.epochs,
      batch_size: ft.batchSize,
      lr: ft.lr,
      seed: ft.seed,
      checkpoint_every: ft.checkpointEvery,
      ...(ft.maxSteps ? { max_steps: ft.maxSteps } : {}),
      // The workflow resolves 'promoted:<name>' to the promoted model's directory before this activity runs.
      ...(ft.student.initFrom && !ft.student.initFrom.startsWith('promoted:') ? { init_from: ft.student.initFrom } : {}),
      ...(slot.threads ? { threads: slot.threads } : {}),
    };
    const configPath = path.join(outDir, 'config.json');
    await writeJsonAtomic(configPath, config);

    const ctx = currentActivity();
    const python = pythonBin();
    const env = { ...process.env, CUDA_VISIBLE_DEVICES: slot.cudaVisibleDevices, PYTHONUNBUFFERED: '1' };
    const log = (line: string) => ctx?.log.debug(`trainer: ${line}`);

    if (!(await exists(path.join(baselineModelDir, 'model.onnx')))) {
      const init = await runTrainer({
        python,
        script: trainerScript('export_onnx.py'),
        args: ['--init-only', '--output', baselineModelDir, '--config', configPath],
        env,
        signal: ctx?.cancellationSignal,
        onEvent: () => undefined,
        onLog: log,
      });
      if (init.exitCode !== 0) throw new Error(`baseline export failed (exit ${init.exitCode ?? init.signal}):\n${init.stderrTail}`);
    }

    let resumedFromStep = 0;
    let lastStep = 0;
    let lastCheckpoint: string | null = null;
    let lastLoss: number | null = null;
    let tokensPerSecond: number | null = null;
    let done: TrainerEvent | undefined;
    // The trainer can be silent for a while (imports, checkpoint writes); the heartbeat must not be.
    const beat = () => ctx?.heartbeat({ step: lastStep, checkpoint: lastCheckpoint, loss: lastLoss });
    const ticker = setInterval(beat, 2000);
    let run;
    try {
      run = await runTrainer({
        python,
        script: trainerScript('train_tiny.py'),
        args: ['--config', configPath],
        env,
        signal: ctx?.cancellationSignal,
        onLog: log,
        onEvent: (e) => {
          if (e.event === 'start') resumedFromStep = Number(e.resumed_from_step ?? 0);
          if (e.event === 'step') {
            lastStep = Number(e.step);
            lastLoss = Number(e.loss);
            tokensPerSecond = Number(e.tokens_per_s);
            ctx?.log.info('train step', { step: lastStep, total: e.total_steps, loss: lastLoss, lr: e.lr, tokensPerSecond });
          }
          if (e.event === 'checkpoint') lastCheckpoint = String(e.path);
          if (e.event === 'done') done = e;
          beat();
        },
      });
    } finally {
      clearInterval(ticker);
    }
    if (ctx?.cancellationSignal.aborted) throw new CancelledFailure(`fine-tune cancelled at step ${lastStep}; last checkpoint ${lastCheckpoint ?? 'none'} kept`);
    if (run.exitCode !== 0 || !done) {
      const msg = `trainer exited with ${run.exitCode ?? run.signal} at step ${lastStep} (last checkpoint ${lastCheckpoint ?? 'none'}):\n${run.stderrTail}`;
      // Bad training data cannot be fixed by a retry; a crash or a kill can.
      if (/No training examples|invalid training data/i.test(run.stderrTail)) throw ApplicationFailure.nonRetryable(msg, 'InvalidTrainingData');
      throw new Error(msg);
    }
    const result: FineTuneResult = {
      modelDir,
      baselineModelDir,
      steps: Number(done.step ?? lastStep),
      finalLoss: done.final_loss === undefined ? lastLoss : Number(done.final_loss),
      resumedFromStep,
      tokensPerSecond,
      report: await refOfFile(reportPath),
    };
    await writeJsonAtomic(resultPath, result);
    return result;
  };
}
