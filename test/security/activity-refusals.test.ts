import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeJsonlAtomic } from '../../activities/artifacts/store';
import { createEvaluate } from '../../activities/evaluate/evaluate';
import { formatFilter } from '../../activities/filter/format-filter';
import { createFineTune } from '../../activities/finetune/fine-tune';
import { createOpenAIFineTune } from '../../activities/finetune/openai-fine-tune';
import { generateShard } from '../../activities/generate/generate-shard';
import { prepareDataset } from '../../activities/prepare/prepare-dataset';
import { rejectSample } from '../../activities/verify/reject-sample';
import { DatasetSchema, EvaluationSchema, FineTuneSchema, RunSpecSchema, VerifierSchema } from '../../schemas/run-spec';
import type { SampleRow } from '../../schemas/artifact';
import { startCaptureServer, type CaptureServer } from '../helpers/capture-server';
import { shardInput } from '../helpers/shard-fixture';
import { layout } from '../../activities/artifacts/layout';

/**
 * Every activity that sends a key or reads or writes a spec path, called as the worker calls it, with the worker's
 * policy in the environment: a key variable outside the policy, a key sent to a host it is not bound to, and paths
 * that escape the roots are refused, non-retryably and naming the rule, before any request reaches the endpoint (a
 * capture server counts what arrives) and before any file is read or written.
 */
const SECRET = 'sk-worker-secret-do-not-send';
// Made when the file loads: the test tables below name these paths.
const tmp = mkdtempSync(path.join(os.tmpdir(), 'activity-refusals-'));
const data = path.join(tmp, 'data');
const artifacts = path.join(tmp, 'artifacts');
const outside = path.join(tmp, 'outside');
for (const d of [data, artifacts, outside]) mkdirSync(d);
writeFileSync(
  path.join(outside, 'secret.jsonl'),
  JSON.stringify({ id: 's', prompt: 'the worker secret file', answer: '1' }) + '\n',
);
writeFileSync(
  path.join(data, 'train.jsonl'),
  JSON.stringify({ id: 'a', prompt: 'Compute 1 + 1.', answer: '2' }) + '\n',
);
symlinkSync(path.join(outside, 'secret.jsonl'), path.join(data, 'link-out.jsonl'));
let hostA: CaptureServer;
let hostB: CaptureServer;
const saved = { ...process.env };

beforeAll(async () => {
  hostA = await startCaptureServer();
  hostB = await startCaptureServer();
});
afterAll(async () => {
  process.env = saved;
  await hostA.close();
  await hostB.close();
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  hostA.requests.length = 0;
  hostB.requests.length = 0;
  // The key is set on the worker; the policy binds it to host A only. DISTILLERY_TEST_UNLISTED is set but not listed.
  process.env = {
    ...saved,
    DISTILLERY_TEST_KEY: SECRET,
    DISTILLERY_TEST_UNLISTED: SECRET,
    DISTILLERY_KEY_POLICY: JSON.stringify({ DISTILLERY_TEST_KEY: [new URL(hostA.url).host] }),
    DISTILLERY_DATA_ROOTS: data,
    DISTILLERY_ARTIFACT_ROOTS: artifacts,
  };
});

async function failureOf(p: Promise<unknown>): Promise<Error & { type?: string; nonRetryable?: boolean }> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeTruthy();
  return err as Error & { type?: string; nonRetryable?: boolean };
}

const sent = () => hostA.requests.length + hostB.requests.length;

/** A run directory under `root` holding one prepared shard of `n` prompts. */
async function shardIn(root: string, n: number): Promise<string> {
  const runDir = mkdtempSync(path.join(root, 'shard-'));
  const rows = Array.from({ length: n }, (_, i) => ({
    id: `p${i}`,
    prompt: `Compute ${10 + i}+${20 + i}.`,
    answer: String(30 + 2 * i),
  }));
  await writeJsonlAtomic(layout.shardPrompts(runDir, 0), rows);
  return runDir;
}

describe('keys', () => {
  const cases = (name: string) => [
    {
      what: `${name}: a variable outside the policy`,
      envName: 'DISTILLERY_TEST_UNLISTED',
      host: () => hostA,
      type: 'ApiKeyNotAllowed',
      says: /which the worker's key policy does not list/,
    },
    {
      what: `${name}: a key bound to host A, sent to host B`,
      envName: 'DISTILLERY_TEST_KEY',
      host: () => hostB,
      type: 'ApiKeyHostNotAllowed',
      says: /binds to 127\.0\.0\.1:\d+, but the endpoint is http:\/\/127\.0\.0\.1:\d+/,
    },
  ];

  for (const mode of ['online', 'batch'] as const) {
    for (const c of cases(`generate (${mode})`)) {
      test(`${c.what}: refused before any request`, async () => {
        // the run dir inside the artifact roots, so that only the key is wrong
        const dir = await shardIn(artifacts, 2);
        const err = await failureOf(
          generateShard(shardInput(dir, { baseURL: c.host().url, apiKeyEnv: c.envName, mode, maxRetries: 0 })),
        );
        expect(err).toMatchObject({ type: c.type, nonRetryable: true });
        expect(err.message).toMatch(c.says);
        expect(err.message).toMatch(/teacher\.apiKeyEnv/);
        expect(err.message).not.toContain(SECRET);
        expect(sent()).toBe(0);
      });
    }
  }

  test('control: the same key goes to host A, and only there', async () => {
    const dir = await shardIn(artifacts, 1);
    await failureOf(
      generateShard(shardInput(dir, { baseURL: hostA.url, apiKeyEnv: 'DISTILLERY_TEST_KEY', maxRetries: 0 })),
    );
    expect(hostA.requests.length).toBeGreaterThan(0);
    expect(hostA.requests.every((r) => r.authorization === `Bearer ${SECRET}`)).toBe(true);
    expect(hostB.requests).toHaveLength(0);
  });

  for (const c of cases('judge')) {
    test(`${c.what}: refused before any sample is judged`, async () => {
      const dir = mkdtempSync(path.join(artifacts, 'judge-'));
      const row: SampleRow = {
        id: 'p0#0@h',
        promptId: 'p0',
        sampleIndex: 0,
        configHash: 'h',
        prompt: 'Write an essay.',
        answer: 'a good essay',
        content: 'An essay.',
        finishReason: 'stop',
        usage: { promptTokens: 1, completionTokens: 1 },
        teacher: { model: 't' },
        sampling: { temperature: 0.6, top_p: 0.95, max_tokens: 10, seed: 0 },
        latencyMs: 1,
      };
      const samples = await writeJsonlAtomic(path.join(dir, 'samples.jsonl'), [row]);
      const verifier = VerifierSchema.parse({
        type: 'judge',
        judge: { baseURL: c.host().url, model: 'judge', apiKeyEnv: c.envName, maxRetries: 0 },
      });
      const err = await failureOf(rejectSample({ runDir: dir, samples, verifier }));
      expect(err).toMatchObject({ type: c.type, nonRetryable: true });
      expect(err.message).toMatch(/verifier\.judge\.apiKeyEnv/);
      expect(sent()).toBe(0);
    });
  }

  for (const c of cases('evaluation endpoint')) {
    test(`${c.what}: refused before any item is asked`, async () => {
      const runDir = mkdtempSync(path.join(artifacts, 'eval-'));
      const evaluation = EvaluationSchema.parse({
        benchmark: { type: 'builtin', task: 'arithmetic', count: 4, seed: 1 },
        k: 1,
      });
      const err = await failureOf(
        createEvaluate()({
          runDir,
          evaluation,
          maxLen: 64,
          models: [{ name: 'hosted', endpoint: { baseURL: c.host().url, model: 'm', apiKeyEnv: c.envName } }],
        }),
      );
      expect(err).toMatchObject({ type: c.type, nonRetryable: true });
      expect(err.message).toMatch(/apiKeyEnv of evaluation model hosted/);
      expect(sent()).toBe(0);
    });
  }

  for (const c of cases('fine-tuning API')) {
    test(`${c.what}: refused before any upload`, async () => {
      const runDir = mkdtempSync(path.join(artifacts, 'ft-'));
      const sft = await writeJsonlAtomic(path.join(runDir, 'filter', 'sft.jsonl'), [
        {
          id: 'a',
          messages: [
            { role: 'user', content: 'q' },
            { role: 'assistant', content: 'a' },
          ],
        },
      ]);
      const fineTune = FineTuneSchema.parse({
        backend: 'openai',
        openai: { baseURL: c.host().url, apiKeyEnv: c.envName, model: 'm' },
      });
      const err = await failureOf(createOpenAIFineTune()({ runDir, sft, fineTune }));
      expect(err).toMatchObject({ type: c.type, nonRetryable: true });
      expect(err.message).toMatch(/fineTune\.openai\.apiKeyEnv/);
      expect(sent()).toBe(0);
    });
  }

  test('the run start (prepare) checks the whole spec: a forbidden key fails it before anything is written', async () => {
    const spec = RunSpecSchema.parse({
      name: 'exfil',
      dataset: { source: { type: 'builtin', task: 'arithmetic', count: 5 } },
      teacher: { baseURL: hostB.url, model: 'm', apiKeyEnv: 'DISTILLERY_TEST_UNLISTED' },
      artifactRoot: artifacts,
    });
    const err = await failureOf(
      prepareDataset({
        artifactRoot: spec.artifactRoot,
        runId: 'exfil-run',
        dataset: spec.dataset,
        shardSize: 10,
        spec,
      }),
    );
    expect(err).toMatchObject({ type: 'ApiKeyNotAllowed', nonRetryable: true });
    expect(existsSync(path.join(artifacts, 'exfil-run'))).toBe(false);
    expect(sent()).toBe(0);
  });
});

describe('paths', () => {
  const escapes = () => [
    { how: '..', p: path.join(data, '..', 'outside', 'secret.jsonl') },
    { how: 'an absolute path outside the roots', p: path.join(outside, 'secret.jsonl') },
    { how: 'a symlink out of a root', p: path.join(data, 'link-out.jsonl') },
  ];
  const expectRefused = (err: Error & { type?: string; nonRetryable?: boolean }, field: string) => {
    expect(err).toMatchObject({ type: 'PathOutsideRoots', nonRetryable: true });
    expect(err.message).toMatch(new RegExp(`^${field.replace(/\./g, '\\.')} `));
    expect(err.message).toMatch(/is outside the directories this worker may (read|write to)/);
    expect(err.message).toMatch(/rule: /);
  };

  test.each(escapes())('dataset.source.path via $how: refused, nothing prepared', async ({ p }) => {
    const runId = `ds-${Math.random().toString(36).slice(2)}`;
    const err = await failureOf(
      prepareDataset({
        artifactRoot: artifacts,
        runId,
        dataset: DatasetSchema.parse({ source: { type: 'jsonl', path: p } }),
        shardSize: 10,
      }),
    );
    expectRefused(err, 'dataset.source.path');
    expect(existsSync(path.join(artifacts, runId))).toBe(false);
  });

  test('control: a dataset inside the data root is prepared', async () => {
    const r = await prepareDataset({
      artifactRoot: artifacts,
      runId: 'ds-ok',
      dataset: DatasetSchema.parse({ source: { type: 'jsonl', path: path.join(data, 'train.jsonl') } }),
      shardSize: 10,
    });
    expect(r.kept).toBe(1);
  });

  test.each([
    { how: '..', p: () => path.join(artifacts, '..', 'outside', 'arts') },
    { how: 'an absolute path outside the roots', p: () => path.join(outside, 'arts') },
    { how: 'a data root (read-only)', p: () => path.join(data, 'arts') },
    {
      how: 'a symlink out of a root',
      p: () => {
        const l = path.join(artifacts, 'out-link');
        if (!existsSync(l)) symlinkSync(outside, l);
        return path.join(l, 'arts');
      },
    },
  ])('artifactRoot via $how: refused, nothing written there', async ({ p }) => {
    const root = p();
    const before = readdirSync(outside).length;
    const err = await failureOf(
      prepareDataset({
        artifactRoot: root,
        runId: 'r',
        dataset: DatasetSchema.parse({ source: { type: 'builtin', task: 'arithmetic', count: 3 } }),
        shardSize: 10,
      }),
    );
    expectRefused(err, 'artifactRoot');
    expect(readdirSync(outside).length).toBe(before);
    expect(existsSync(path.join(data, 'arts'))).toBe(false);
  });

  test.each(escapes())('evaluation benchmark via $how: refused before it is read', async ({ p }) => {
    const runDir = mkdtempSync(path.join(artifacts, 'bench-'));
    const evaluation = EvaluationSchema.parse({
      benchmark: { type: 'builtin', task: 'arithmetic', count: 4, seed: 1 },
      k: 1,
    });
    const err = await failureOf(
      createEvaluate()({ runDir, evaluation, maxLen: 64, models: [], benchmarks: [{ type: 'math500', path: p }] }),
    );
    expectRefused(err, 'evaluation.benchmarks.0.path');
  });

  test.each(escapes())(
    'filters (tokenizer, earlier dataset, decontamination benchmark) via $how: refused',
    async ({ p }) => {
      const runDir = mkdtempSync(path.join(artifacts, 'filter-'));
      const accepted = await writeJsonlAtomic(path.join(runDir, 'accepted.jsonl'), []);
      for (const [field, filters] of [
        ['filters.length.tokenizer', { length: { tokenizer: p } }],
        ['filters.earlierDatasets.0', { earlierDatasets: [p] }],
        ['filters.decontaminate.benchmarks.0.path', { decontaminate: { benchmarks: [{ path: p }] } }],
      ] as const) {
        expectRefused(await failureOf(formatFilter({ runDir, accepted, filters: filters as never })), field);
      }
    },
  );

  test.each(escapes())('the student to fine-tune from via $how: refused before the trainer starts', async ({ p }) => {
    const runDir = mkdtempSync(path.join(artifacts, 'student-'));
    const sft = await writeJsonlAtomic(path.join(runDir, 'filter', 'sft.jsonl'), []);
    const fineTune = createFineTune({ cudaVisibleDevices: '' });
    expectRefused(
      await failureOf(
        fineTune({ runDir, sft, fineTune: FineTuneSchema.parse({ backend: 'trl', student: { source: p } }) }),
      ),
      'fineTune.student.source',
    );
    expectRefused(
      await failureOf(
        fineTune({ runDir, sft, fineTune: FineTuneSchema.parse({ backend: 'tiny', student: { initFrom: p } }) }),
      ),
      'fineTune.student.initFrom',
    );
    expect(existsSync(path.join(runDir, 'finetune'))).toBe(false);
  });

  test('a generation shard whose run dir lies outside the artifact roots: refused before anything is read or asked', async () => {
    const err = await failureOf(generateShard(shardInput(await shardIn(outside, 1), { baseURL: hostA.url })));
    expectRefused(err, 'runDir');
    expect(sent()).toBe(0);
  });
});
