import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createFineTune, type DeviceSlot, type FineTuneInput } from '../../activities/finetune/fine-tune';
import { trlTrainerConfig } from '../../activities/finetune/trl-fine-tune';
import { pathOf, writeJsonAtomic } from '../../activities/artifacts/store';
import { readSpecFile } from '../../cli/spec-file';
import { FineTuneSchema, fineTuneLr, type RunSpec } from '../../schemas/run-spec';
import { projectRoot, pythonBin, trainerScript } from '../../infra/paths';
import { sftRunDir } from '../../test/helpers/trainer-fixture';

/**
 * bench:train — CPU training throughput of the embedded student (the fineTune section of specs/embedded-default.yaml,
 * or of BENCH_SPEC), (a) through the fine-tune activity (the real activity function: subprocess, stdout progress
 * parsing, heartbeats; run in MockActivityEnvironment, which is what a worker calls it with) and (b) the same trainer
 * on the same config run directly. Tokens/s is the trainer's own count of training tokens over its training-loop time,
 * so start-up (torch import, model load, the baseline export) is reported apart. Exports are off on both sides: they
 * are not training. Rounds alternate A,B,B,A to cancel drift. Last line: `ratio=<a/b>`.
 */
const SPEC = process.env.BENCH_SPEC ?? path.join(projectRoot, 'specs', 'embedded-default.yaml');
const ROWS = Number(process.env.BENCH_ROWS ?? 3000);
const THREADS = 2;

interface Report {
  tokens: number;
  tokens_per_s: number;
  train_time_s: number;
  wall_time_s_this_run: number;
}

function benchFineTune(): RunSpec['fineTune'] {
  const spec = readSpecFile(SPEC) as { fineTune?: Record<string, unknown> };
  const base = FineTuneSchema.parse(spec.fineTune ?? {});
  const trl = base.backend === 'trl';
  // A pretrained student trains ~100 tokens/s on 2 cores, the tiny GPT ~100× faster: fewer steps keep the runs near a minute.
  const steps = Number(process.env.BENCH_STEPS ?? (trl ? 12 : 120));
  return FineTuneSchema.parse({ ...spec.fineTune, maxSteps: steps, checkpointEvery: trl ? 6 : 50, ...(trl ? { export: { onnx: false, gguf: false } } : {}) });
}

/** The trainer script and config the activity would run, for the direct side. */
function directConfig(input: FineTuneInput, dir: string, slot: DeviceSlot): { script: string; config: Record<string, unknown> } {
  const ft = input.fineTune;
  if (ft.backend === 'trl') return { script: trainerScript(path.join('sft', 'train_sft.py')), config: trlTrainerConfig(input, dir, slot) };
  const m = ft.model;
  return {
    script: trainerScript('train_tiny.py'),
    config: {
      data: pathOf(input.sft),
      output_dir: dir,
      model: { d_model: m.dModel, n_layer: m.nLayer, n_head: m.nHead, max_len: m.maxLen },
      epochs: ft.epochs,
      batch_size: ft.batchSize,
      lr: fineTuneLr(ft),
      seed: ft.seed,
      checkpoint_every: ft.checkpointEvery,
      max_steps: ft.maxSteps,
      threads: THREADS,
    },
  };
}

async function main(): Promise<void> {
  const { runDir, sft } = await sftRunDir(ROWS);
  const fineTune = benchFineTune();
  const slot: DeviceSlot = { cudaVisibleDevices: '', threads: THREADS };
  const activity = createFineTune(slot);
  const student = fineTune.backend === 'trl' ? `${fineTune.student.source} (trl)` : 'tiny byte-level GPT';

  async function viaActivity(round: number): Promise<Report> {
    const dir = path.join(runDir, `activity-${round}`);
    const started = Date.now();
    await new MockActivityEnvironment({}, { logger: new DefaultLogger('WARN') }).run(activity, { runDir: dir, sft, fineTune });
    const report = JSON.parse(readFileSync(path.join(dir, 'finetune', 'train_report.json'), 'utf8')) as Report;
    console.log(`(a) activity round ${round}: ${report.tokens_per_s.toFixed(1)} tokens/s in the training loop; activity wall ${((Date.now() - started) / 1000).toFixed(1)} s`);
    rmSync(dir, { recursive: true, force: true });
    return report;
  }

  async function direct(round: number): Promise<Report> {
    const dir = path.join(runDir, `direct-${round}`);
    const { script, config } = directConfig({ runDir: dir, sft, fineTune }, dir, slot);
    const configPath = path.join(dir, 'config.json');
    await writeJsonAtomic(configPath, config);
    const started = Date.now();
    const r = spawnSync(pythonBin(), [script, '--config', configPath], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CUDA_VISIBLE_DEVICES: '' } });
    if (r.status !== 0) throw new Error(`direct trainer run failed with ${r.status}`);
    const report = JSON.parse(readFileSync(path.join(dir, 'train_report.json'), 'utf8')) as Report;
    console.log(`(b) direct   round ${round}: ${report.tokens_per_s.toFixed(1)} tokens/s in the training loop; process wall ${((Date.now() - started) / 1000).toFixed(1)} s`);
    rmSync(dir, { recursive: true, force: true });
    return report;
  }

  const a: Report[] = [];
  const b: Report[] = [];
  a.push(await viaActivity(1));
  b.push(await direct(1));
  b.push(await direct(2));
  a.push(await viaActivity(2));
  rmSync(runDir, { recursive: true, force: true });
  const mean = (rs: Report[]) => rs.reduce((s, r) => s + r.tokens / r.train_time_s, 0) / rs.length;
  console.log(`student: ${student} from ${path.relative(process.cwd(), SPEC)}, ${fineTune.maxSteps} steps × batch ${fineTune.batchSize}, ${a[0]!.tokens} tokens per run, ${THREADS} threads`);
  console.log(`(a) through the fine-tune activity: ${mean(a).toFixed(1)} tokens/s`);
  console.log(`(b) trainer run directly:           ${mean(b).toFixed(1)} tokens/s`);
  console.log(`ratio=${(mean(a) / mean(b)).toFixed(3)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
