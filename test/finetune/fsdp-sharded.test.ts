/**
 * Sharded fine-tuning in a slot, on CPU: the trl trainer with distributed.strategy fsdp (PyTorch FSDP2 through
 * accelerate, gloo) across 2 processes, on a randomly initialised Llama-architecture student (~95k parameters, a
 * 320-token BPE vocabulary, ChatML): the real model code and the real sharding, without the weights' download or cost.
 *
 * - Equivalence: 2 FSDP processes with batch 4 each train on the same global batches as 1 process with batch 8, so the
 *   loss at every step must match within LOSS_TOL (fp32 both sides; measured: identical to the 5 decimals the trainer
 *   logs) and the consolidated weights within WEIGHT_TOL (measured max |Δ| 1.2e-7). The checkpoints are sharded: one
 *   DCP file per rank, no full model file.
 * - Kill/resume: one rank SIGKILLed after a sharded checkpoint; the activity's retry resumes from it and the loss
 *   curve across the kill is the uninterrupted run's. A crash after the final checkpoint costs only the gathering and
 *   the exports: the next attempt trains no step past the end.
 * - Memory: a 7B student is refused before any process loads it, with the estimate in the message.
 *
 * About 5-8 minutes on 2 cores shared with other work, most of it Python start-up (3 processes per FSDP run).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { createFineTune, type FineTuneResult } from '../../activities/finetune/fine-tune';
import { pythonBin, trainerScript } from '../../infra/paths';
import { FineTuneSchema } from '../../schemas/run-spec';
import { envOf, pidsWith, randomStudent, sftRunDir } from '../helpers/trainer-fixture';

const LOSS_TOL = 1e-4;
const WEIGHT_TOL = 1e-5;
const work = mkdtempSync(path.join(os.tmpdir(), 'fsdp-'));
let student = '';

const spec = (distributed: Record<string, unknown>, batchSize: number) =>
  FineTuneSchema.parse({
    backend: 'trl',
    epochs: 1,
    batchSize,
    lr: 1e-3,
    warmupRatio: 0,
    checkpointEvery: 2,
    maxSteps: 10,
    seed: 1,
    student: { source: student, maxSeqLen: 64 },
    export: { onnx: false, gguf: false },
    distributed,
  });
// One thread per process on both sides: the same float summation order.
const activity = createFineTune({ cudaVisibleDevices: '', threads: 1 });

interface Report {
  loss_curve: Array<{ step: number; loss: number }>;
  resumed_from_step: number;
}
const report = (runDir: string) =>
  JSON.parse(readFileSync(path.join(runDir, 'finetune', 'train_report.json'), 'utf8')) as Report;

/** max |a - b| over the tensors of two safetensors files (the consolidated students), in Python. */
function maxWeightDiff(a: string, b: string): { keys: boolean; diff: number } {
  const r = spawnSync(
    pythonBin(),
    [
      '-c',
      'import sys,json\nfrom safetensors.torch import load_file\na=load_file(sys.argv[1]); b=load_file(sys.argv[2])\nprint(json.dumps({"keys": sorted(a)==sorted(b), "diff": max((a[k]-b[k]).abs().max().item() for k in a)}))',
      a,
      b,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

let fsdpCurve: Array<{ step: number; loss: number }> = [];

beforeAll(() => {
  student = randomStudent(path.join(work, 'student'));
});

test('FSDP across 2 CPU processes trains the same losses and weights as 1 process; checkpoints are sharded per rank', async () => {
  const single = await sftRunDir(96);
  const r1 = (await new MockActivityEnvironment().run(activity, {
    runDir: single.runDir,
    sft: single.sft,
    fineTune: spec({ strategy: 'ddp' }, 8),
  })) as FineTuneResult;
  const sharded = await sftRunDir(96);
  const r2 = (await new MockActivityEnvironment().run(activity, {
    runDir: sharded.runDir,
    sft: sharded.sft,
    fineTune: spec({ strategy: 'fsdp', processesPerNode: 2 }, 4),
  })) as FineTuneResult;

  const a = report(single.runDir).loss_curve;
  const b = report(sharded.runDir).loss_curve;
  fsdpCurve = b;
  console.log(`1 process: ${a.map((p) => p.loss).join(' ')}\nFSDP x2:   ${b.map((p) => p.loss).join(' ')}`);
  expect(b.map((p) => p.step)).toEqual(a.map((p) => p.step));
  expect(a).toHaveLength(10);
  const lossDiff = Math.max(...a.map((p, i) => Math.abs(p.loss - b[i]!.loss)));
  expect(lossDiff).toBeLessThanOrEqual(LOSS_TOL);
  // The loss moved: equal curves of an untrained model would prove nothing.
  expect(a[0]!.loss - a[9]!.loss).toBeGreaterThan(0.1);

  // The sharded checkpoint: one DCP shard per rank, and no replicated model file.
  const ckpt = path.join(sharded.runDir, 'finetune', 'checkpoints', 'checkpoint-10');
  const shards = readdirSync(path.join(ckpt, 'pytorch_model_fsdp_0'))
    .filter((f) => f.endsWith('.distcp'))
    .sort();
  expect(shards).toEqual(['__0_0.distcp', '__1_0.distcp']);
  expect(existsSync(path.join(ckpt, 'model.safetensors'))).toBe(false);
  expect(existsSync(path.join(ckpt, 'distillery-complete.json'))).toBe(true);

  // The student is gathered into one safetensors file with the full weights.
  const w = maxWeightDiff(path.join(r1.modelDir, 'model.safetensors'), path.join(r2.modelDir, 'model.safetensors'));
  console.log(
    `consolidated FSDP student vs 1-process student: max |Δw| ${w.diff.toExponential(2)} (loss max |Δ| ${lossDiff})`,
  );
  expect(w.keys).toBe(true);
  expect(w.diff).toBeLessThanOrEqual(WEIGHT_TOL);
}, 600_000);

test('one FSDP rank SIGKILLed after a sharded checkpoint: the retry resumes from it and the curve is unchanged', async () => {
  const { runDir, sft } = await sftRunDir(96);
  const input = { runDir, sft, fineTune: spec({ strategy: 'fsdp', processesPerNode: 2 }, 4) };
  const configPath = path.join(runDir, 'finetune', 'config.json');

  const first = new MockActivityEnvironment({ attempt: 1 });
  let killed: { pid: number; checkpoint: string } | null = null;
  first.on('heartbeat', (d: { checkpoint?: string | null }) => {
    if (killed || !d?.checkpoint || !/checkpoint-4$/.test(d.checkpoint)) return;
    const rank1 = pidsWith('train_sft.py', '--config', configPath).filter((pid) => envOf(pid, 'LOCAL_RANK') === '1');
    expect(rank1).toHaveLength(1);
    process.kill(rank1[0]!, 'SIGKILL');
    killed = { pid: rank1[0]!, checkpoint: d.checkpoint };
  });
  const failure = await first.run(activity, input).catch((e: Error) => e);
  expect(killed).not.toBeNull();
  expect(failure).toBeInstanceOf(Error);
  // A crash is retryable: not a non-retryable ApplicationFailure.
  expect(failure instanceof ApplicationFailure && failure.nonRetryable).toBe(false);
  expect(String((failure as Error).message)).toMatch(/trainer exited with 1 at step/);
  const complete = readdirSync(path.join(runDir, 'finetune', 'checkpoints'))
    .filter((d) => existsSync(path.join(runDir, 'finetune', 'checkpoints', d, 'distillery-complete.json')))
    .map((d) => Number(d.replace('checkpoint-', '')));
  const last = Math.max(...complete);
  expect(last).toBeGreaterThanOrEqual(4);

  const second = new MockActivityEnvironment({ attempt: 2 });
  const steps: number[] = [];
  second.on('heartbeat', (d: { step?: number }) => d?.step && steps.push(d.step));
  const result = (await second.run(activity, input)) as FineTuneResult;
  console.log(
    `rank 1 killed after ${killed!.checkpoint}; complete checkpoints then ${complete.sort((x, y) => x - y).join(', ')}; retry resumed from ${result.resumedFromStep}`,
  );
  expect(result.resumedFromStep).toBe(last);
  expect(Math.min(...steps)).toBe(last + 1);
  expect(result.steps).toBe(10);
  const curve = report(runDir).loss_curve;
  expect(curve.map((p) => p.step)).toEqual([...Array(10).keys()].map((i) => i + 1));
  if (fsdpCurve.length) {
    const diff = Math.max(...curve.map((p, i) => Math.abs(p.loss - fsdpCurve[i]!.loss)));
    console.log(`loss curve across the kill vs uninterrupted FSDP run: max |Δ| ${diff}`);
    expect(diff).toBeLessThanOrEqual(LOSS_TOL);
  }
  // No rank of either attempt is left behind.
  expect(pidsWith('train_sft.py', '--config', configPath)).toEqual([]);

  // A crash after the final checkpoint (during the exports): the next attempt gathers the student from that
  // checkpoint and trains no step past the end.
  const before = path.join(work, 'student-before-crash.safetensors');
  copyFileSync(path.join(result.modelDir, 'model.safetensors'), before);
  rmSync(result.modelDir, { recursive: true });
  rmSync(path.join(runDir, 'finetune', 'result.json'));
  const third = (await new MockActivityEnvironment({ attempt: 3 }).run(activity, input)) as FineTuneResult;
  expect(third.resumedFromStep).toBe(10);
  expect(third.steps).toBe(10);
  expect(report(runDir).loss_curve.map((p) => p.step)).toEqual([...Array(10).keys()].map((i) => i + 1));
  const again = maxWeightDiff(before, path.join(third.modelDir, 'model.safetensors'));
  expect(again.keys).toBe(true);
  expect(again.diff).toBeLessThanOrEqual(WEIGHT_TOL);
}, 900_000);

test('a student that cannot fit is refused before training, with the estimate and what would fit', async () => {
  const big = randomStudent(path.join(work, 'qwen2.5-7b'), { preset: 'qwen2.5-7b', configOnly: true });
  const { runDir, sft } = await sftRunDir(8);
  const fineTune = FineTuneSchema.parse({
    backend: 'trl',
    student: { source: big, maxSeqLen: 1024 },
    batchSize: 1,
    export: { onnx: false, gguf: false },
  });
  const failure = await new MockActivityEnvironment().run(activity, { runDir, sft, fineTune }).catch((e: Error) => e);
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect((failure as ApplicationFailure).type).toBe('StudentDoesNotFit');
  expect((failure as ApplicationFailure).nonRetryable).toBe(true);
  expect((failure as Error).message).toMatch(
    /7\.62B-parameter student \(full fine-tune\) with ddp in 1 CPU process\(es\) needs about \d+\.\d+ GiB/,
  );
  expect(existsSync(path.join(runDir, 'finetune', 'checkpoints'))).toBe(false);

  // The same arithmetic for GPU slots (memory_estimate.py): 7B full fine-tune, 8 x 80 GiB, sequences of 4096.
  const cfg = path.join(work, 'est.json');
  const estimate = (strategy: string, nodes: number, extra: Record<string, unknown> = {}) => {
    writeFileSync(
      cfg,
      JSON.stringify({
        data: 'unused.jsonl',
        output_dir: work,
        student: { source: big, max_seq_len: 4096 },
        batch_size: 1,
        distributed: { strategy, ...extra },
      }),
    );
    return spawnSync(
      pythonBin(),
      [
        trainerScript(path.join('sft', 'memory_estimate.py')),
        '--config',
        cfg,
        '--nodes',
        String(nodes),
        '--gpus-per-node',
        '8',
        '--gpu-memory-gib',
        '80',
        '--host-memory-gib',
        '1000',
      ],
      { encoding: 'utf8' },
    );
  };
  const ddp = estimate('ddp', 1);
  expect(ddp.status).toBe(2);
  expect(ddp.stderr).toMatch(
    /student does not fit: .* with ddp on 8 GPU\(s\) needs about 1\d\d\.\d+ GiB per GPU .* it would fit with fsdp or zero3 across at least 4 GPUs/,
  );
  const fsdp = estimate('fsdp', 1, { activation_checkpointing: true });
  expect(fsdp.status).toBe(0);
  const per = JSON.parse(fsdp.stdout).per_device;
  console.log(
    `7B on 8 x 80 GiB: ddp refused; fsdp + activation checkpointing ${per.total_gib} GiB per GPU (state ${per.state_gib})`,
  );
  expect(per.total_gib).toBeLessThan(80);
}, 300_000);
