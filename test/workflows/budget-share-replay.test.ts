import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { dataConverterFromEnv } from '../../infra/codec/aes-gcm-codec';
import { bundleWithReplacedText } from './replace-text-bundle';
import { workflowBundlePath } from '../../workers/build-bundle';
import { shardValve, stubActivities } from './stub-activities';
import { startStubEnv, stubSpec, type StubEnv } from './stub-env';

/**
 * Budget shares change which shards the generation workflow starts and when (no shard starts while nothing is left
 * to share out), so they sit behind patched('adaptive-budget-share'). A history recorded by the code before them (the
 * same bundle with the patch check read as false) must replay on today's code; the same history on a bundle that
 * applies shares unconditionally (the check read as true) must not, which shows the check is what keeps it apart.
 */
let s: StubEnv;
beforeAll(async () => {
  s = await startStubEnv('budget-share-replay');
});
afterAll(async () => s?.close());
jest.setTimeout(180_000);

const PATCH_CHECK = "patched('adaptive-budget-share')";

const bundleWith = (patchIs: 'true' | 'false') =>
  bundleWithReplacedText(/[\\/]workflows[\\/]generation\.ts$/, PATCH_CHECK, patchIs);

test('a generation recorded before budget shares replays on today’s code, and would not without the patch check', async () => {
  const before = await bundleWith('false');
  const always = await bundleWith('true');
  const taskQueue = `before-shares-${randomUUID()}`;
  // $0.80 per shard, $1 over 4 shards, two in flight, shard 0 finishing first: today's code would hold shard 2 back
  // (nothing left to share out while shard 1 holds its share); the code before shares starts it.
  const valve = shardValve();
  const stubs = stubActivities({
    kept: 40,
    shardTokens: { prompt: 400_000, completion: 400_000 },
    beforeShardDone: valve.beforeShardDone,
  });
  const worker = await Worker.create({
    connection: s.env.nativeConnection,
    taskQueue,
    workflowBundle: { code: before },
    activities: stubs.activities,
    dataConverter: dataConverterFromEnv({}),
  });
  const workflowId = `before-shares-${randomUUID()}`;
  await worker.runUntil(async () => {
    const handle = await s.env.client.workflow.start('distillationWorkflow', {
      taskQueue,
      workflowId,
      args: [
        stubSpec('before-shares', taskQueue, s.artifactRoot, {
          teacher: {
            baseURL: 'http://127.0.0.1:9/v1',
            model: 'stub-teacher',
            pricing: { inputPerMTokens: 1, outputPerMTokens: 1 },
            budgetUSD: 1,
          },
          sampling: { adaptive: {} },
          generation: { shardSize: 10, maxShardsInFlight: 2 },
        }),
      ],
    });
    for (let want = 2; want <= 3; want++) {
      const deadline = Date.now() + 20_000;
      while (valve.started.length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(valve.started.length).toBe(want);
      valve.release(1);
    }
    valve.release(2);
    await handle.result();
  });
  // The code before shares started a third shard after the first finished, and passed no share.
  const shards = stubs.called('generateShard').map((c) => c.input as { budget?: unknown });
  expect(shards).toHaveLength(3);
  expect(shards.every((x) => x.budget === undefined)).toBe(true);

  const history = await s.env.client.workflow.getHandle(`${workflowId}-generate`).fetchHistory();
  await expect(
    Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath } }, history, `${workflowId}-generate`),
  ).resolves.toBeUndefined();
  await expect(
    Worker.runReplayHistory({ workflowBundle: { code: always } }, history, `${workflowId}-generate`),
  ).rejects.toThrow(/[Nn]ondetermin/);
});
