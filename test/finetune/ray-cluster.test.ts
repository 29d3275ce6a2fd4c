/**
 * fineTune.cluster.engine "ray" end to end on a local Ray head (PyPI `ray[default]`, the dashboard's Jobs API): the
 * trl trainer runs as a Ray job (ray_launch.py in a placement group) on a random-weight student, followed by the
 * fine-tune activity through the trainer's events file.
 *
 * 1. Attempt 1 runs in its own Node process (the compiled activity, `npm run build`), submits the job and is SIGKILLed
 *    mid-job, as a lost worker. Attempt 2 finds the same submission running and attaches: still one job.
 * 2. The job's trainer is SIGKILLed: the job fails, attempt 2 fails (retryably). Attempt 3 submits the next
 *    generation, which resumes from the last checkpoint on the shared run dir and finishes.
 * 3. Another run is cancelled while it trains: the activity stops the job (STOPPED) and no trainer is left.
 *
 * Without Ray in the trainer's venv the tests are skipped with a note, and fail under CI=true. About 3-4 minutes on
 * 2 cores, a minute of it the Ray head's start.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { clusterEndpointsFromEnv, type ClusterEndpoints } from '../../activities/finetune/cluster-endpoints';
import { jobIdBase } from '../../activities/finetune/cluster-job';
import { createFineTune, type FineTuneInput, type FineTuneResult } from '../../activities/finetune/fine-tune';
import { projectRoot } from '../../infra/paths';
import { FineTuneSchema } from '../../schemas/run-spec';
import { haveRay, startRayHead, type RayHead } from '../helpers/ray-head';
import { pidsWith, randomStudent, sftRunDir } from '../helpers/trainer-fixture';

const HAVE_RAY = haveRay();
if (!HAVE_RAY && process.env.CI === 'true')
  throw new Error('ray is not installed in the trainer venv (npm run setup installs infra/trainer/requirements.txt)');
if (!HAVE_RAY) console.warn('ray-cluster tests skipped: ray is not installed in the trainer venv (npm run setup)');
const maybe = HAVE_RAY ? test : test.skip;
const compiled = path.join(projectRoot, 'dist', 'activities', 'finetune', 'fine-tune.js');

let head: RayHead | undefined;
let clusters: ClusterEndpoints;
let student = '';

interface Beat {
  jobId?: string;
  phase?: string;
  step?: number;
  checkpoint?: string | null;
}

beforeAll(async () => {
  if (!HAVE_RAY) return;
  if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run \`npm run build\` first (npm test does)`);
  const work = mkdtempSync(path.join(os.tmpdir(), 'ray-ft-'));
  student = randomStudent(path.join(work, 'student'), { hidden: 192, layers: 4 });
  head = await startRayHead();
  clusters = { ...clusterEndpointsFromEnv({}), ray: { address: head.address } };
}, 300_000);

afterAll(async () => {
  await head?.stop();
});

const fineTune = (maxSteps: number) =>
  FineTuneSchema.parse({
    backend: 'trl',
    batchSize: 8,
    lr: 1e-3,
    warmupRatio: 0,
    checkpointEvery: 5,
    maxSteps,
    seed: 1,
    student: { source: student, maxSeqLen: 64 },
    export: { onnx: false, gguf: false },
    cluster: { engine: 'ray', nodes: 1, gpusPerNode: 0, pollSeconds: 0.5 },
  });

async function rayJobs(prefix: string): Promise<Array<{ submission_id: string; status: string }>> {
  const r = await fetch(`${head!.address}/api/jobs/`);
  const all = (await r.json()) as Array<{ submission_id: string; status: string }>;
  return all
    .filter((j) => j.submission_id?.startsWith(prefix))
    .sort((a, b) => a.submission_id.localeCompare(b.submission_id));
}

const stepOf = (checkpoint: string | null | undefined) => Number(/checkpoint-(\d+)$/.exec(checkpoint ?? '')?.[1] ?? 0);

/** Attempt 1 in its own process (the compiled activity), printing its heartbeats; resolves on the first checkpoint. */
function attemptInChild(input: FineTuneInput): Promise<{ kill: () => Promise<void>; beat: Beat }> {
  const script = `
const { MockActivityEnvironment } = require('@temporalio/testing');
const { createFineTune } = require(${JSON.stringify(compiled)});
const [input, clusters] = JSON.parse(process.argv[1]);
const env = new MockActivityEnvironment({ attempt: 1 });
env.on('heartbeat', (d) => process.stdout.write(JSON.stringify(d) + '\\n'));
env.run(createFineTune({ cudaVisibleDevices: '' }, clusters), input).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
`;
  const child = spawn(process.execPath, ['-e', script, JSON.stringify([input, clusters])], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    let resolved = false;
    void exited.then(() => resolved || reject(new Error(`attempt 1 exited (${child.exitCode}) before a checkpoint`)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let beat: Beat;
      try {
        beat = JSON.parse(line) as Beat;
      } catch {
        return;
      }
      if (beat.checkpoint && !resolved) {
        resolved = true;
        resolve({ beat, kill: async () => (child.kill('SIGKILL'), exited) });
      }
    });
  });
}

maybe(
  'a lost worker: the retry attaches to the same Ray job; a killed job: the next one resumes from the checkpoint',
  async () => {
    const { runDir, sft } = await sftRunDir(480);
    const input: FineTuneInput = { runDir, sft, fineTune: fineTune(60) };
    const base = jobIdBase(runDir);
    const configPath = path.join(runDir, 'finetune', 'config.json');

    // 1. Attempt 1 submits, and its worker dies once the job has written a checkpoint.
    const a1 = await attemptInChild(input);
    await a1.kill();
    expect(a1.beat.jobId).toBe(`${base}-0`);
    expect(await rayJobs(base)).toEqual([expect.objectContaining({ submission_id: `${base}-0`, status: 'RUNNING' })]);

    // 2. Attempt 2 attaches to that job; then the job's trainer is SIGKILLed (an OOM kill on the node).
    const env2 = new MockActivityEnvironment({ attempt: 2 });
    const jobs2 = new Set<string>();
    let trainerKilledAfter = 0;
    env2.on('heartbeat', (d: Beat) => {
      if (d?.jobId) jobs2.add(d.jobId);
      const at = stepOf(d?.checkpoint);
      if (trainerKilledAfter || at <= stepOf(a1.beat.checkpoint)) return;
      trainerKilledAfter = at;
      for (const pid of pidsWith('train_sft.py', '--config', configPath)) process.kill(pid, 'SIGKILL');
    });
    const failure = await env2.run(createFineTune({ cudaVisibleDevices: '' }, clusters), input).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(Error);
    expect(String((failure as Error).message)).toMatch(new RegExp(`ray job ${base}-0 failed at step \\d+`));
    expect([...jobs2]).toEqual([`${base}-0`]);
    expect(trainerKilledAfter).toBeGreaterThan(stepOf(a1.beat.checkpoint));
    expect(await rayJobs(base)).toEqual([expect.objectContaining({ submission_id: `${base}-0`, status: 'FAILED' })]);

    // 3. Attempt 3 submits the next generation, which resumes from the last checkpoint.
    const env3 = new MockActivityEnvironment({ attempt: 3 });
    const jobs3 = new Set<string>();
    const steps3: number[] = [];
    env3.on('heartbeat', (d: Beat) => {
      if (d?.jobId) jobs3.add(d.jobId);
      if (d?.step) steps3.push(d.step);
    });
    const result = (await env3.run(createFineTune({ cudaVisibleDevices: '' }, clusters), input)) as FineTuneResult;
    console.log(
      `worker killed after ${a1.beat.checkpoint}; trainer killed after checkpoint-${trainerKilledAfter}; ${base}-1 resumed from step ${result.resumedFromStep} and finished at ${result.steps}`,
    );
    expect([...jobs3]).toEqual([`${base}-1`]);
    expect(result.resumedFromStep).toBeGreaterThanOrEqual(trainerKilledAfter);
    expect(result.resumedFromStep % 5).toBe(0);
    expect(result.steps).toBe(60);
    expect(Math.min(...steps3.filter((s) => s > 0))).toBeGreaterThan(result.resumedFromStep);
    expect(await rayJobs(base)).toEqual([
      expect.objectContaining({ submission_id: `${base}-0`, status: 'FAILED' }),
      expect.objectContaining({ submission_id: `${base}-1`, status: 'SUCCEEDED' }),
    ]);
    expect(existsSync(path.join(result.modelDir, 'model.safetensors'))).toBe(true);
    const report = JSON.parse(readFileSync(path.join(runDir, 'finetune', 'train_report.json'), 'utf8'));
    expect(report.loss_curve.map((p: { step: number }) => p.step)).toEqual([...Array(60).keys()].map((i) => i + 1));
  },
  600_000,
);

maybe(
  'cancelling the activity stops the Ray job and leaves no trainer running',
  async () => {
    const { runDir, sft } = await sftRunDir(480);
    const input: FineTuneInput = { runDir, sft, fineTune: fineTune(60) };
    const base = jobIdBase(runDir);
    const configPath = path.join(runDir, 'finetune', 'config.json');
    const env = new MockActivityEnvironment({ attempt: 1 });
    let cancelledAt = 0;
    env.on('heartbeat', (d: Beat) => {
      if (cancelledAt || !d?.step || d.phase !== 'running') return;
      cancelledAt = d.step;
      env.cancel();
    });
    const failure = await env.run(createFineTune({ cudaVisibleDevices: '' }, clusters), input).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(CancelledFailure);
    expect(cancelledAt).toBeGreaterThan(0);
    expect(await rayJobs(base)).toEqual([expect.objectContaining({ submission_id: `${base}-0`, status: 'STOPPED' })]);
    const deadline = Date.now() + 60_000;
    while (pidsWith('train_sft.py', '--config', configPath).length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 500));
    expect(pidsWith('train_sft.py', '--config', configPath)).toEqual([]);
    console.log(`cancelled at step ${cancelledAt}: ${(failure as Error).message}`);
  },
  600_000,
);
