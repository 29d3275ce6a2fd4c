import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createFineTune } from '../../activities/finetune/fine-tune';
import { pathOf, writeJsonAtomic } from '../../activities/artifacts/store';
import { FineTuneSchema, fineTuneLr } from '../../schemas/run-spec';
import { pythonBin, trainerScript } from '../../infra/paths';
import { sftRunDir } from '../../test/helpers/trainer-fixture';

/**
 * bench:train — CPU training throughput of the embedded student (the spec's default tiny GPT), (a) through the
 * fine-tune activity (the real activity function: subprocess, stdout progress parsing, heartbeats; run in
 * MockActivityEnvironment, which is what a worker calls it with) and (b) the same trainer on the same config run
 * directly. Tokens/s is the trainer's own count of training tokens over its training-loop time, so start-up (torch
 * import, the activity's baseline export) is reported apart. Rounds alternate A,B,B,A to cancel drift.
 * Last line: `ratio=<a/b>`.
 */
const ROWS = Number(process.env.BENCH_ROWS ?? 3000);
const STEPS = Number(process.env.BENCH_STEPS ?? 120);

interface Report {
  tokens: number;
  tokens_per_s: number;
  train_time_s: number;
  wall_time_s_this_run: number;
}

async function main(): Promise<void> {
  const { runDir, sft } = await sftRunDir(ROWS);
  const fineTune = FineTuneSchema.parse({ maxSteps: STEPS, checkpointEvery: 50 });
  const activity = createFineTune({ cudaVisibleDevices: '', threads: 2 });

  async function viaActivity(round: number): Promise<Report> {
    const dir = path.join(runDir, `activity-${round}`);
    const started = Date.now();
    await new MockActivityEnvironment({}, { logger: new DefaultLogger('WARN') }).run(activity, { runDir: dir, sft, fineTune });
    const report = JSON.parse(readFileSync(path.join(dir, 'finetune', 'train_report.json'), 'utf8')) as Report;
    console.log(`(a) activity round ${round}: ${report.tokens_per_s.toFixed(0)} tokens/s in the training loop; activity wall ${((Date.now() - started) / 1000).toFixed(1)} s (includes the baseline export)`);
    rmSync(dir, { recursive: true, force: true });
    return report;
  }

  async function direct(round: number): Promise<Report> {
    const dir = path.join(runDir, `direct-${round}`);
    const config = path.join(dir, 'config.json');
    const m = fineTune.model;
    await writeJsonAtomic(config, {
      data: pathOf(sft),
      output_dir: dir,
      model: { d_model: m.dModel, n_layer: m.nLayer, n_head: m.nHead, max_len: m.maxLen },
      epochs: fineTune.epochs,
      batch_size: fineTune.batchSize,
      lr: fineTuneLr(fineTune),
      seed: fineTune.seed,
      checkpoint_every: fineTune.checkpointEvery,
      max_steps: STEPS,
      threads: 2,
    });
    const started = Date.now();
    const r = spawnSync(pythonBin(), [trainerScript('train_tiny.py'), '--config', config], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CUDA_VISIBLE_DEVICES: '' } });
    if (r.status !== 0) throw new Error(`direct trainer run failed with ${r.status}`);
    const report = JSON.parse(readFileSync(path.join(dir, 'train_report.json'), 'utf8')) as Report;
    console.log(`(b) direct   round ${round}: ${report.tokens_per_s.toFixed(0)} tokens/s in the training loop; process wall ${((Date.now() - started) / 1000).toFixed(1)} s`);
    rmSync(dir, { recursive: true, force: true });
    return report;
  }

  const a: Report[] = [];
  const b: Report[] = [];
  a.push(await viaActivity(1));
  b.push(await direct(1));
  b.push(await direct(2));
  a.push(await viaActivity(2));
  const mean = (rs: Report[]) => rs.reduce((s, r) => s + r.tokens / r.train_time_s, 0) / rs.length;
  console.log(`student: default tiny GPT, ${STEPS} steps × batch ${fineTune.batchSize}, ${a[0]!.tokens} tokens per run, 2 threads`);
  console.log(`(a) through the fine-tune activity: ${mean(a).toFixed(0)} tokens/s`);
  console.log(`(b) trainer run directly:           ${mean(b).toFixed(0)} tokens/s`);
  console.log(`ratio=${(mean(a) / mean(b)).toFixed(3)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
