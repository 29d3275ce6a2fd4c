import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ArtifactRef } from '../../schemas/artifact';
import { fineTuneLr, type RunSpec } from '../../schemas/run-spec';
import { pythonBin, trainerScript } from '../../infra/paths';
import { currentActivity } from '../activity-context';
import { exists, pathOf, refOfFile, verifyRef, writeJsonAtomic } from '../artifacts/store';
import { driveTrainer, runTrainer } from './trainer-process';
import type { ClusterEndpoints } from './cluster-endpoints';
import { fineTuneTrl } from './trl-fine-tune';
import { confinePath } from '../security/worker-policy';
import { BUILTIN_STUDENTS } from '../security/spec-uses';

import { kdTrainerObjective } from './kd-targets';

export interface FineTuneInput {
  runDir: string;
  sft: ArtifactRef;
  fineTune: RunSpec['fineTune'];
  /** The run spec, copied into the trl student's model card. */
  spec?: unknown;
  /** The filter stage's dataset card (Markdown or JSON), copied into the trl student's model card. */
  datasetCard?: ArtifactRef;
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
  /** 'tiny': the byte-level GPT (model.onnx in modelDir); 'hf': a transformers student (trl backend). */
  studentKind?: 'tiny' | 'hf';
  /** trl: path of the fine-tuned student as GGUF (F16) for llama.cpp / node-llama-cpp (modelDir/model.gguf). */
  gguf?: string;
  /** trl: path of the untrained student as GGUF (the source GGUF, or initFrom's export): the evaluation baseline. */
  baselineGguf?: string;
  /** trl: path of the fine-tuned student as ONNX (input_ids, attention_mask → logits; no KV cache). */
  onnx?: string;
  /** trl: modelDir/README.md, carrying the dataset card and the run spec. */
  modelCard?: ArtifactRef;
}

/** The slot a GPU worker gives each activity: which devices the trainer may see ('' = CPU only). */
export interface DeviceSlot {
  cudaVisibleDevices: string;
  threads?: number;
}

/**
 * Fine-tunes the student on the SFT dataset in a trainer subprocess. Progress streams into heartbeats; the trainer
 * checkpoints every N steps and, on a retry after a crash or a lost worker, resumes from its last complete checkpoint.
 * Cancellation stops the trainer's whole process group and keeps the last checkpoint. With fineTune.cluster the trl
 * trainer runs on a Ray cluster or as a Kubernetes TrainJob instead (cluster-fine-tune.ts); where those clusters are
 * comes from `clusters`, by default the worker's environment (cluster-endpoints.ts).
 */
export function createFineTune(slot: DeviceSlot, clusters?: ClusterEndpoints) {
  return async function fineTune(input: FineTuneInput): Promise<FineTuneResult> {
    const backend = input.fineTune.backend ?? 'tiny';
    // Weights the trainer loads must come from inside the worker's roots.
    const student = input.fineTune.student;
    if (backend === 'trl' && !BUILTIN_STUDENTS.has(student.source))
      await confinePath({ field: 'fineTune.student.source', path: student.source, access: 'read' });
    if (student.initFrom && !student.initFrom.startsWith('promoted:'))
      await confinePath({ field: 'fineTune.student.initFrom', path: student.initFrom, access: 'read' });
    if (backend === 'trl') return fineTuneTrl(slot, input, clusters);
    if (backend === 'openai') {
      // The API backend needs no GPU slot: the workflow calls createOpenAIFineTune's activity (openai-fine-tune.ts).
      throw ApplicationFailure.nonRetryable(
        'fineTune.backend "openai" runs in the openaiFineTune activity, not in the GPU fine-tune activity',
        'WrongFineTuneBackend',
      );
    }
    return fineTuneTiny(slot, input);
  };
}

/** The tiny byte-level GPT (infra/trainer/train_tiny.py), on CPU or one GPU. */
async function fineTuneTiny(slot: DeviceSlot, input: FineTuneInput): Promise<FineTuneResult> {
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
    lr: fineTuneLr(ft),
    seed: ft.seed,
    checkpoint_every: ft.checkpointEvery,
    ...(ft.maxSteps ? { max_steps: ft.maxSteps } : {}),
    // The workflow resolves 'promoted:<name>' to the promoted model's directory before this activity runs.
    ...(ft.student.initFrom && !ft.student.initFrom.startsWith('promoted:') ? { init_from: ft.student.initFrom } : {}),
    ...(slot.threads ? { threads: slot.threads } : {}),
    ...(ft.objective?.type === 'kd'
      ? { objective: await kdTrainerObjective(input.runDir, input.sft, ft, input.spec) }
      : {}),
  };
  const configPath = path.join(outDir, 'config.json');
  await writeJsonAtomic(configPath, config);

  const ctx = currentActivity();
  const python = pythonBin();
  const env = { ...process.env, CUDA_VISIBLE_DEVICES: slot.cudaVisibleDevices, PYTHONUNBUFFERED: '1' };
  const log = (line: string) => ctx?.log.debug(`trainer: ${line}`);

  // The baseline export can take longer than the heartbeat timeout on a busy machine: heartbeat through it too.
  const ticker = setInterval(
    () => ctx?.heartbeat({ step: 0, checkpoint: null, loss: null, phase: 'baseline-export' }),
    2000,
  );
  try {
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
      if (init.exitCode !== 0)
        throw new Error(`baseline export failed (exit ${init.exitCode ?? init.signal}):\n${init.stderrTail}`);
    }
  } finally {
    clearInterval(ticker);
  }

  const run = await driveTrainer({
    python,
    script: trainerScript('train_tiny.py'),
    args: ['--config', configPath],
    env,
    signal: ctx?.cancellationSignal,
    heartbeat: (d) => ctx?.heartbeat(d),
    onStep: (e) =>
      ctx?.log.info('train step', {
        step: e.step,
        total: e.total_steps,
        loss: e.loss,
        lr: e.lr,
        tokensPerSecond: e.tokens_per_s,
      }),
    onLog: log,
  });
  const { lastStep, lastCheckpoint, lastLoss, done } = run;
  if (ctx?.cancellationSignal.aborted)
    throw new CancelledFailure(
      `fine-tune cancelled at step ${lastStep}; last checkpoint ${lastCheckpoint ?? 'none'} kept`,
    );
  if (run.exitCode !== 0 || !done) {
    const msg = `trainer exited with ${run.exitCode ?? run.signal} at step ${lastStep} (last checkpoint ${lastCheckpoint ?? 'none'}):\n${run.stderrTail}`;
    // Bad training data cannot be fixed by a retry; a crash or a kill can.
    if (run.exitCode === 4 || /TokenizerMismatch/.test(run.stderrTail))
      throw ApplicationFailure.nonRetryable(msg, 'TokenizerMismatch');
    if (/No training examples|invalid training data/i.test(run.stderrTail))
      throw ApplicationFailure.nonRetryable(msg, 'InvalidTrainingData');
    throw new Error(msg);
  }
  const result: FineTuneResult = {
    modelDir,
    baselineModelDir,
    steps: Number(done.step ?? lastStep),
    finalLoss: done.final_loss === undefined ? lastLoss : Number(done.final_loss),
    resumedFromStep: run.resumedFromStep,
    tokensPerSecond: run.tokensPerSecond,
    report: await refOfFile(reportPath),
    studentKind: 'tiny',
  };
  await writeJsonAtomic(resultPath, result);
  return result;
}
