import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { WorkflowFailedError } from '@temporalio/client';
import { startCaptureServer, type CaptureServer } from '../helpers/capture-server';
import { chaosSpec, useChaosStack, type ChaosStack } from './harness';
import { recordRow } from './table';

/**
 * Hostile run specs through the real pipeline (dev server, worker process): whoever can start a workflow writes the
 * spec, so it must not be able to send a worker secret to a host of its choosing, nor make the worker read or write
 * outside the directories it was given. The worker runs with a key policy (one key, bound to capture server A), a
 * second secret it does not list, and explicit data and artifact roots. Each spec points its teacher at capture server
 * B: a real HTTP server that counts every request it gets. The rows report what was measured: how the runs ended,
 * how many requests reached the capture servers, how many files appeared outside the roots.
 */

jest.setTimeout(600_000);

let s: ChaosStack;
let hostA: CaptureServer;
let hostB: CaptureServer;
const SECRET = `sk-chaos-${randomUUID()}`;
const UNLISTED = `sk-unlisted-${randomUUID()}`;

useChaosStack(
  'security',
  { gpu: false },
  {
    started: async (stack) => {
      s = stack;
      hostA = await startCaptureServer();
      hostB = await startCaptureServer();
      for (const d of ['data', 'artifacts', 'outside']) mkdirSync(path.join(stack.tmp, d), { recursive: true });
      // The worker again, now with its policy: nothing else changes.
      await stack.kill('cpu');
      Object.assign(stack.workerEnv, {
        DISTILLERY_TEST_SECRET: SECRET,
        DISTILLERY_TEST_UNLISTED: UNLISTED,
        DISTILLERY_KEY_POLICY: JSON.stringify({ DISTILLERY_TEST_SECRET: [new URL(hostA.url).host] }),
        DISTILLERY_DATA_ROOTS: path.join(stack.tmp, 'data'),
        DISTILLERY_ARTIFACT_ROOTS: path.join(stack.tmp, 'artifacts'),
      });
      await stack.startCpu();
    },
    closing: async () => {
      await hostA?.close();
      await hostB?.close();
    },
  },
);

interface Outcome {
  completed: boolean;
  type: string | undefined;
  message: string;
  seconds: number;
}

/** Runs a spec to its end and reports how it ended (the application failure's type and message, when it failed). */
async function run(name: string, overrides: Record<string, unknown>): Promise<Outcome> {
  const started = Date.now();
  const spec = chaosSpec(s, name, {
    teacher: { baseURL: hostB.url, model: 'procedural-arithmetic-teacher', maxRetries: 0 },
    ...overrides,
  });
  // A refusal takes seconds; a run still going after 90 s was not refused (it is then cut off, and counted so).
  const err = await s.client.workflow
    .execute('distillationWorkflow', {
      taskQueue: 'distillery',
      workflowId: `security-${name}-${randomUUID()}`,
      args: [spec],
      workflowExecutionTimeout: '90 seconds',
    })
    .then(
      () => null,
      (e: unknown) => e,
    );
  let cause = (err as WorkflowFailedError | null)?.cause as
    { type?: string; message?: string; cause?: unknown } | undefined;
  while (cause && !cause.type && cause.cause) cause = cause.cause as typeof cause;
  return {
    completed: err === null,
    type: cause?.type,
    message: cause?.message ?? String(err ?? ''),
    seconds: (Date.now() - started) / 1000,
  };
}

/** How a run ended, for the row's note: completed, the failure type, or (not refused) the first words of why it stopped. */
const ended = (o: Outcome) => (o.completed ? 'completed' : (o.type ?? `not refused (${o.message.slice(0, 40)})`));

const requestsSent = () => hostA.requests.length + hostB.requests.length;
const secretSeen = () =>
  [...hostA.requests, ...hostB.requests].some(
    (r) => r.authorization?.includes(SECRET) || r.authorization?.includes(UNLISTED),
  );

test('a spec naming a key variable outside the worker policy, or sending a bound key to another host: refused, no request sent', async () => {
  const before = requestsSent();
  const runs = [
    {
      expect: 'ApiKeyNotAllowed',
      outcome: await run('unlisted-key', {
        teacher: { baseURL: hostB.url, model: 'm', apiKeyEnv: 'DISTILLERY_TEST_UNLISTED', maxRetries: 0 },
      }),
    },
    {
      expect: 'ApiKeyHostNotAllowed',
      outcome: await run('key-to-other-host', {
        teacher: { baseURL: hostB.url, model: 'm', apiKeyEnv: 'DISTILLERY_TEST_SECRET', maxRetries: 0 },
      }),
    },
  ];
  const requests = requestsSent() - before;
  const completed = runs.filter((r) => r.outcome.completed).length;
  const ok =
    completed === 0 &&
    requests === 0 &&
    !secretSeen() &&
    runs.every((r) => r.outcome.type === r.expect && /rule: /.test(r.outcome.message) && r.outcome.seconds < 60);
  recordRow({
    fault: 'security: spec names a forbidden API key variable (unlisted; bound to another host)',
    runs: runs.length,
    completed,
    lost: 0,
    duplicated: 0,
    redone: requests,
    bound: 0,
    unit: 'requests to capture servers',
    ok,
    note: runs.map((r) => `${ended(r.outcome)} in ${r.outcome.seconds.toFixed(1)} s`).join('; '),
  });
  for (const r of runs) {
    expect(r.outcome).toMatchObject({ completed: false, type: r.expect });
    expect(r.outcome.message).toMatch(/teacher\.apiKeyEnv names .*refused before any request \(rule: /);
    expect(r.outcome.message).not.toContain(SECRET);
    expect(r.outcome.seconds).toBeLessThan(60);
  }
  expect(requests).toBe(0);
  expect(secretSeen()).toBe(false);
});

test('spec paths escaping the worker roots (.., a symlink out, artifactRoot outside): refused, nothing read or written', async () => {
  const data = path.join(s.tmp, 'data');
  const outside = path.join(s.tmp, 'outside');
  const secretFile = path.join(outside, 'secret.jsonl');
  writeFileSync(secretFile, JSON.stringify({ id: 'secret', prompt: `What is ${SECRET}?`, answer: '0' }) + '\n');
  symlinkSync(secretFile, path.join(data, 'innocent.jsonl'));
  const outsideBefore = readdirSync(outside).length;
  const before = requestsSent();
  const runs = [
    {
      field: 'dataset.source.path',
      outcome: await run('dotdot', {
        dataset: { source: { type: 'jsonl', path: path.join(data, '..', 'outside', 'secret.jsonl') } },
      }),
    },
    {
      field: 'dataset.source.path',
      outcome: await run('symlink', {
        dataset: { source: { type: 'jsonl', path: path.join(data, 'innocent.jsonl') } },
      }),
    },
    { field: 'artifactRoot', outcome: await run('artifact-root', { artifactRoot: path.join(outside, 'artifacts') }) },
  ];
  const requests = requestsSent() - before;
  const written = readdirSync(outside).length - outsideBefore;
  const completed = runs.filter((r) => r.outcome.completed).length;
  const ok =
    completed === 0 &&
    requests === 0 &&
    written === 0 &&
    runs.every((r) => r.outcome.type === 'PathOutsideRoots' && r.outcome.message.startsWith(`${r.field} `));
  recordRow({
    fault: 'security: spec paths escape the worker roots (.., symlink, artifactRoot)',
    runs: runs.length,
    completed,
    lost: 0,
    duplicated: 0,
    redone: requests + written,
    bound: 0,
    unit: 'requests sent + files written outside the roots',
    ok,
    note:
      runs.map((r) => `${r.field}: ${ended(r.outcome)} in ${r.outcome.seconds.toFixed(1)} s`).join('; ') +
      `; ${requests} requests, ${written} files outside`,
  });
  for (const r of runs) {
    expect(r.outcome).toMatchObject({ completed: false, type: 'PathOutsideRoots' });
    expect(r.outcome.message).toMatch(
      new RegExp(`^${r.field.replace(/\./g, '\\.')} .* is outside the directories this worker may .*\\(rule: `),
    );
  }
  expect(requests).toBe(0);
  expect(written).toBe(0);
});
