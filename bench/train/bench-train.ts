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
import { envInt, envNumber, median, runAbba, secondsList } from '../rounds';

/**
 * bench:train — what the fine-tune activity costs on top of its trainer. The student is the fineTune section of
 * specs/embedded-default.yaml (or of BENCH_SPEC), for BENCH_STEPS steps with a checkpoint every BENCH_CHECKPOINT_EVERY
 * and the exports off, on the same SFT file:
 *
 *   A = the whole fine-tune activity, wall clock from the call to its return: the real activity function (config,
 *       trainer subprocess, stdout progress parsing, heartbeats every event and every 2 s, checkpoints, result and
 *       report refs), run in MockActivityEnvironment, which is what a worker calls it with.
 *   B = the same trainer script with the same config (same steps, same checkpoint cadence), started directly:
 *       wall clock from spawn to exit.
 * "Exports off" holds for the trl student (export.onnx and export.gguf false on both sides). The tiny student has no
 * such switch in the activity: its trainer writes the final ONNX export on both sides, and A also includes the
 * baseline export the activity always makes first (a second Python process) — work B does not do, counted against A.
 *
 * Rounds in ABBA order (BENCH_ROUNDS, default 2: A B B A), raw rounds printed, then the median of the per-round
 * ratios. The trainer's own in-loop tokens/s is printed for both as a check that both trained alike, not compared.
 * Last line: `ratio=<direct wall ÷ activity wall>`. Exit 1 when it is under BENCH_MIN_RATIO (default 0.9).
 */
const SPEC = process.env.BENCH_SPEC ?? path.join(projectRoot, 'specs', 'embedded-default.yaml');
const ROWS = envInt('BENCH_ROWS', 3000);
const ROUNDS = envInt('BENCH_ROUNDS', 2);
const MIN_RATIO = envNumber('BENCH_MIN_RATIO', 0.9);
const THREADS = 2;

interface Report {
  tokens: number;
  tokens_per_s: number;
  train_time_s: number;
}

interface Run {
  wall: number;
  report: Report;
}

function benchFineTune(): RunSpec['fineTune'] {
  const spec = readSpecFile(SPEC) as { fineTune?: Record<string, unknown> };
  const base = FineTuneSchema.parse(spec.fineTune ?? {});
  const trl = base.backend === 'trl';
  // A pretrained student trains ~100 tokens/s on 2 cores, the tiny GPT ~100× faster: fewer steps keep the runs near a minute.
  const steps = envInt('BENCH_STEPS', trl ? 12 : 120);
  const checkpointEvery = envInt('BENCH_CHECKPOINT_EVERY', trl ? 6 : 50);
  return FineTuneSchema.parse({
    ...spec.fineTune,
    maxSteps: steps,
    checkpointEvery,
    ...(trl ? { export: { onnx: false, gguf: false } } : {}),
  });
}

/** The trainer script and config the activity runs, for the direct side. */
function directConfig(
  input: FineTuneInput,
  dir: string,
  slot: DeviceSlot,
): { script: string; config: Record<string, unknown> } {
  const ft = input.fineTune;
  if (ft.backend === 'trl')
    return { script: trainerScript(path.join('sft', 'train_sft.py')), config: trlTrainerConfig(input, dir, slot) };
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
  console.log(
    `student: ${student} from ${path.relative(process.cwd(), SPEC)}, ${fineTune.maxSteps} steps × batch ${fineTune.batchSize}, checkpoint every ${fineTune.checkpointEvery}, ${THREADS} threads, exports off`,
  );
  console.log(
    'A = the fine-tune activity (MockActivityEnvironment), B = the same trainer script run directly; wall clock of each, rounds in ABBA order',
  );

  async function viaActivity(round: number): Promise<Run> {
    const dir = path.join(runDir, `activity-${round}`);
    const started = performance.now();
    await new MockActivityEnvironment({}, { logger: new DefaultLogger('WARN') }).run(activity, {
      runDir: dir,
      sft,
      fineTune,
    });
    const wall = (performance.now() - started) / 1000;
    const report = JSON.parse(readFileSync(path.join(dir, 'finetune', 'train_report.json'), 'utf8')) as Report;
    rmSync(dir, { recursive: true, force: true });
    return { wall, report };
  }

  async function direct(round: number): Promise<Run> {
    const dir = path.join(runDir, `direct-${round}`);
    const { script, config } = directConfig({ runDir: dir, sft, fineTune }, dir, slot);
    const configPath = path.join(dir, 'config.json');
    await writeJsonAtomic(configPath, config);
    const started = performance.now();
    const r = spawnSync(pythonBin(), [script, '--config', configPath], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, CUDA_VISIBLE_DEVICES: '' },
    });
    const wall = (performance.now() - started) / 1000;
    if (r.status !== 0) throw new Error(`direct trainer run failed with ${r.status}`);
    const report = JSON.parse(readFileSync(path.join(dir, 'train_report.json'), 'utf8')) as Report;
    rmSync(dir, { recursive: true, force: true });
    return { wall, report };
  }

  try {
    const rounds = await runAbba<Run>(ROUNDS, { A: viaActivity, B: direct }, (r) =>
      console.log(
        `round ${r.round} (${r.order.join(' ')}): A activity ${r.a.wall.toFixed(2)} s (trainer loop ${r.a.report.train_time_s.toFixed(2)} s, ${r.a.report.tokens_per_s.toFixed(1)} tokens/s) | B direct ${r.b.wall.toFixed(2)} s (trainer loop ${r.b.report.train_time_s.toFixed(2)} s, ${r.b.report.tokens_per_s.toFixed(1)} tokens/s) | B/A ${(r.b.wall / r.a.wall).toFixed(3)}`,
      ),
    );
    for (const r of rounds) {
      if (r.a.report.tokens !== r.b.report.tokens)
        throw new Error(
          `round ${r.round}: the activity trained on ${r.a.report.tokens} tokens, the direct run on ${r.b.report.tokens}: not the same work`,
        );
    }
    const ratios = rounds.map((r) => r.b.wall / r.a.wall);
    const ratio = median(ratios);
    const a = rounds.map((r) => r.a.wall);
    const b = rounds.map((r) => r.b.wall);
    console.log(
      `A activity walls ${secondsList(a)} s (median ${median(a).toFixed(2)}), B direct walls ${secondsList(b)} s (median ${median(b).toFixed(2)}); ${rounds[0]!.a.report.tokens} training tokens per run`,
    );
    console.log(
      `activity overhead: median ${(median(a) - median(b)).toFixed(2)} s per fine-tune; per-round ratios B/A ${ratios.map((x) => x.toFixed(3)).join(' ')}`,
    );
    const ok = ratio >= MIN_RATIO;
    console.log(`target: direct wall ÷ activity wall ≥ ${MIN_RATIO} ${ok ? 'met' : 'MISSED'}`);
    console.log(`ratio=${ratio.toFixed(3)}`);
    if (!ok) process.exitCode = 1;
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
