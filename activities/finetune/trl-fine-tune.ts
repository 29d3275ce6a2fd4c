import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { pythonBin, trainerScript } from '../../infra/paths';
import { fineTuneLr } from '../../schemas/run-spec';
import { currentActivity } from '../activity-context';
import { exists, pathOf, verifyRef, writeJsonAtomic } from '../artifacts/store';
import type { DeviceSlot, FineTuneInput, FineTuneResult } from './fine-tune';
import type { ClusterEndpoints } from './cluster-endpoints';
import { fineTuneOnCluster } from './cluster-fine-tune';
import { driveTrainer } from './trainer-process';
import { BUILTIN_STUDENTS } from '../security/spec-uses';
import { processesPerNode, trainerFailure, trlResult } from './trl-outcome';
import { kdTrainerObjective } from './kd-targets';

/** The trainer's config (infra/trainer/sft/README.md) from the run spec's fineTune section. */
export function trlTrainerConfig(input: FineTuneInput, outDir: string, slot: DeviceSlot): Record<string, unknown> {
  const ft = input.fineTune;
  // Paths in a spec are relative to where the run was started (the worker's cwd), not to the finetune dir.
  const local = (p: string) => (BUILTIN_STUDENTS.has(p) ? p : path.resolve(p));
  return {
    data: pathOf(input.sft),
    output_dir: outDir,
    student: {
      source: local(ft.student.source),
      ...(ft.student.initFrom
        ? { init_from: ft.student.initFrom.startsWith('promoted:') ? ft.student.initFrom : local(ft.student.initFrom) }
        : {}),
      max_seq_len: ft.student.maxSeqLen,
    },
    lora: ft.lora
      ? { r: ft.lora.r, alpha: ft.lora.alpha, dropout: ft.lora.dropout, target_modules: ft.lora.targetModules }
      : null,
    epochs: ft.epochs,
    batch_size: ft.batchSize,
    gradient_accumulation: ft.gradientAccumulation,
    lr: fineTuneLr(ft),
    warmup_ratio: ft.warmupRatio,
    scheduler: ft.scheduler,
    packing: ft.packing,
    gradient_checkpointing: ft.gradientCheckpointing,
    precision: ft.precision,
    seed: ft.seed,
    checkpoint_every: ft.checkpointEvery,
    ...(ft.maxSteps ? { max_steps: ft.maxSteps } : {}),
    ...(slot.threads && !ft.cluster ? { threads: slot.threads } : {}),
    export: { onnx: ft.export.onnx, gguf: ft.export.gguf },
    distributed: {
      strategy: ft.distributed.strategy,
      cpu_offload: ft.distributed.cpuOffload,
      activation_checkpointing: ft.distributed.activationCheckpointing,
      processes_per_node: processesPerNode(ft) ?? null,
    },
    model_card: {
      name:
        input.spec && typeof input.spec === 'object' && 'name' in input.spec
          ? String((input.spec as { name: unknown }).name)
          : null,
      spec: input.spec ?? null,
      dataset_card: input.datasetCard ? pathOf(input.datasetCard) : null,
    },
  };
}

/**
 * The trl backend: transformers + TRL SFT of a real small LM (infra/trainer/sft/train_sft.py) with the same event
 * protocol, heartbeats, checkpoints and resume as the tiny backend. The trained student lands in finetune/model as
 * safetensors + tokenizer + chat template, a model card, an ONNX and a GGUF export; the baseline is the untrained
 * student (finetune/baseline-model, and the source GGUF itself for llama.cpp).
 */
export async function fineTuneTrl(
  slot: DeviceSlot,
  input: FineTuneInput,
  clusters?: ClusterEndpoints,
): Promise<FineTuneResult> {
  await verifyRef(input.sft);
  if (input.datasetCard) await verifyRef(input.datasetCard);
  const outDir = path.join(input.runDir, 'finetune');
  const resultPath = path.join(outDir, 'result.json');
  if (await exists(resultPath)) return JSON.parse(await fs.readFile(resultPath, 'utf8')) as FineTuneResult;

  const ctx = currentActivity();
  if (fineTuneLr(input.fineTune) > 1e-3) {
    ctx?.log.warn(
      `fineTune.lr ${fineTuneLr(input.fineTune)} is the tiny GPT's scale; a pretrained student usually wants 1e-5..5e-5 (about 2e-4 with LoRA)`,
    );
  }
  const configPath = path.join(outDir, 'config.json');
  const objective =
    input.fineTune.objective?.type === 'kd'
      ? { objective: await kdTrainerObjective(input.runDir, input.sft, input.fineTune, input.spec) }
      : {};
  await writeJsonAtomic(configPath, { ...trlTrainerConfig(input, outDir, slot), ...objective });
  if (input.fineTune.cluster) return fineTuneOnCluster(input, outDir, configPath, resultPath, clusters);

  const env = { ...process.env, CUDA_VISIBLE_DEVICES: slot.cudaVisibleDevices, PYTHONUNBUFFERED: '1' };
  const run = await driveTrainer({
    python: pythonBin(),
    script: trainerScript(path.join('sft', 'train_sft.py')),
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
    onLog: (line) => ctx?.log.debug(`trainer: ${line}`),
  });
  if (ctx?.cancellationSignal.aborted)
    throw new CancelledFailure(
      `fine-tune cancelled at step ${run.lastStep}; last checkpoint ${run.lastCheckpoint ?? 'none'} kept`,
    );
  const done = run.done;
  if (run.exitCode !== 0 || !done) {
    throw trainerFailure(
      run.exitCode,
      `trainer exited with ${run.exitCode ?? run.signal} at step ${run.lastStep} (last checkpoint ${run.lastCheckpoint ?? 'none'}):\n${run.stderrTail}`,
      run.stderrTail,
    );
  }
  return trlResult(done, run, resultPath);
}
