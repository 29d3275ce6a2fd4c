/**
 * runOnCluster's choice of job (attach, take the result, or submit the next generation) and its cancel path, against
 * an in-memory TEST DOUBLE of a cluster engine that refuses duplicate ids as Ray and the Kubernetes API do. The real
 * engines run in ray-cluster.test.ts and kube-trainjob.test.ts; this covers the cases those cannot reach cheaply.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import {
  jobIdBase,
  runOnCluster as runOnClusterUnstopped,
  type ClusterEngine,
  type JobStatus,
  type Launch,
} from '../../activities/finetune/cluster-job';
import { shellQuote } from '../../activities/finetune/ray-jobs';
import { trainJobStatus } from '../../activities/finetune/kube-trainjob';

// In-memory: a wrong choice of job shows up as a run that never ends, so fail fast.
jest.setTimeout(20_000);

// Runs a failed assertion left polling are stopped after each test, so that jest can exit.
const running: AbortController[] = [];
afterEach(() => running.splice(0).forEach((c) => c.abort()));
function runOnCluster(opts: Parameters<typeof runOnClusterUnstopped>[0]): ReturnType<typeof runOnClusterUnstopped> {
  const ac = new AbortController();
  running.push(ac);
  opts.signal?.addEventListener('abort', () => ac.abort());
  const p = runOnClusterUnstopped({ ...opts, signal: ac.signal });
  p.catch(() => undefined);
  return p;
}

/** Waits for what the runs under test do, however slowly a loaded machine runs them, instead of a fixed sleep. */
async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

class InMemoryEngine implements ClusterEngine {
  readonly name = 'in-memory';
  jobs = new Map<string, JobStatus>();
  submits: string[] = [];
  stops: string[] = [];
  lookups = 0;
  async status(id: string) {
    this.lookups++;
    return this.jobs.get(id) ?? null;
  }
  async submit(id: string, _launch: Launch) {
    this.submits.push(id);
    if (this.jobs.has(id)) return 'exists' as const;
    this.jobs.set(id, { phase: 'running' });
    return 'created' as const;
  }
  async stop(id: string) {
    this.stops.push(id);
    const j = this.jobs.get(id);
    if (j && (j.phase === 'running' || j.phase === 'pending')) this.jobs.set(id, { phase: 'stopped' });
  }
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'cluster-job-'));
const base = jobIdBase('/artifacts/run-1');
const launch = (id: string): Launch => ({
  configPath: '/artifacts/run-1/finetune/config.json',
  eventsFile: path.join(dir, `${id}.jsonl`),
  nodes: 2,
  gpusPerNode: 8,
  processesPerNode: 8,
});
const done = (id: string) =>
  writeFileSync(
    path.join(dir, `${id}.jsonl`),
    `${JSON.stringify({ event: 'start', resumed_from_step: 40 })}\n${JSON.stringify({ event: 'done', step: 100 })}\n`,
  );

test('job ids are deterministic per run dir and differ between runs', () => {
  expect(jobIdBase('/artifacts/run-1')).toBe(base);
  expect(jobIdBase('/artifacts/run-2')).not.toBe(base);
  expect(base).toMatch(/^distillery-[0-9a-f]{12}$/);
});

test('attaches to a running job, submits the next generation after a failure, takes a finished one as it is', async () => {
  const engine = new InMemoryEngine();
  // First attempt: nothing yet, submits -0; it finishes.
  const first = runOnCluster({ engine, base, launch, pollMs: 5 });
  await until('the first attempt submitted', () => engine.submits.length > 0);
  expect(engine.submits).toEqual([`${base}-0`]);
  // A second attempt while -0 runs attaches to it: both are polling it, still one submission.
  const seen = engine.lookups;
  const second = runOnCluster({ engine, base, launch, pollMs: 5 });
  await until('both attempts polled a few times', () => engine.lookups >= seen + 10);
  expect(engine.submits).toEqual([`${base}-0`]);
  done(`${base}-0`);
  engine.jobs.set(`${base}-0`, { phase: 'succeeded' });
  const [a, b] = await Promise.all([first, second]);
  expect([a.submitted, b.submitted]).toEqual([true, false]);
  expect(a.done?.step).toBe(100);
  expect(b.jobId).toBe(`${base}-0`);

  // A later generation after a failure: -0 failed, -1 is submitted, and resumed from what the trainer said.
  const engine2 = new InMemoryEngine();
  engine2.jobs.set(`${base}-0`, { phase: 'failed', message: 'OOMKilled', exitCode: 137 });
  const next = runOnCluster({ engine: engine2, base, launch, pollMs: 5 });
  await until('the next generation submitted', () => engine2.submits.length > 0);
  expect(engine2.submits).toEqual([`${base}-1`]);
  done(`${base}-1`);
  engine2.jobs.set(`${base}-1`, { phase: 'succeeded' });
  const r = await next;
  expect(r.resumedFromStep).toBe(40);
});

test('two attempts racing to submit the same generation: the loser attaches instead of submitting a second job', async () => {
  const engine = new InMemoryEngine();
  engine.jobs.set(`${base}-0`, { phase: 'stopped' });
  // Both saw -0 stopped; both submit -1; the engine refuses the second, which then follows -1.
  const slowStatus = engine.status.bind(engine);
  let calls = 0;
  engine.status = async (id: string) => {
    if (id === `${base}-1` && calls++ < 2) return null; // both lookups ran before either submit
    return slowStatus(id);
  };
  const runs = [runOnCluster({ engine, base, launch, pollMs: 5 }), runOnCluster({ engine, base, launch, pollMs: 5 })];
  await until('both attempts submitted', () => engine.submits.length >= 2);
  expect(engine.submits).toEqual([`${base}-1`, `${base}-1`]);
  expect([...engine.jobs.keys()]).toEqual([`${base}-0`, `${base}-1`]);
  done(`${base}-1`);
  engine.jobs.set(`${base}-1`, { phase: 'succeeded' });
  const [x, y] = await Promise.all(runs);
  expect([x.submitted, y.submitted].sort()).toEqual([false, true]);
});

test('cancel stops the job and ends with CancelledFailure once it has stopped', async () => {
  const engine = new InMemoryEngine();
  const ac = new AbortController();
  const run = runOnCluster({ engine, base: jobIdBase('/artifacts/run-3'), launch, pollMs: 5, signal: ac.signal }).catch(
    (e: Error) => e,
  );
  await until('the job was submitted', () => engine.submits.length > 0);
  ac.abort();
  const e = await run;
  expect(e).toBeInstanceOf(CancelledFailure);
  expect(engine.stops).toEqual([`${jobIdBase('/artifacts/run-3')}-0`]);
  expect(engine.jobs.get(`${jobIdBase('/artifacts/run-3')}-0`)?.phase).toBe('stopped');
});

test('TrainJob conditions map to phases; shell quoting survives hostile paths', () => {
  expect(trainJobStatus({})).toEqual({ phase: 'pending' });
  expect(trainJobStatus({ status: { conditions: [{ type: 'Created', status: 'True' }] } }).phase).toBe('running');
  expect(trainJobStatus({ status: { conditions: [{ type: 'Complete', status: 'True' }] } }).phase).toBe('succeeded');
  expect(
    trainJobStatus({
      status: { conditions: [{ type: 'Failed', status: 'True', reason: 'JobFailed', message: 'node 1 OOMKilled' }] },
    }),
  ).toEqual({ phase: 'failed', message: 'JobFailed: node 1 OOMKilled' });
  expect(trainJobStatus({ spec: { suspend: true } }).phase).toBe('stopped');
  expect(trainJobStatus({ status: { conditions: [{ type: 'Complete', status: 'False' }] } }).phase).toBe('running');
  expect(shellQuote('/a/b-c_d.json')).toBe('/a/b-c_d.json');
  expect(shellQuote("/tmp/x'; rm -rf / #")).toBe(`'/tmp/x'\\''; rm -rf / #'`);
  expect(shellQuote('$(id)')).toBe(`'$(id)'`);
});
