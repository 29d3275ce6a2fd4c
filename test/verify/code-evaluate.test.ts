/**
 * HumanEval-style evaluation scores code through the same hardened verifier as rejection sampling: the evaluate
 * activity, with the humaneval benchmark (../shared/data/benchmarks beside the clone, or DISTILLERY_BENCHMARKS), asks
 * two models through an OpenAI-compatible endpoint — a scripted endpoint, an honest test double that answers each
 * HumanEval prompt from a table: one model with the canonical solutions, one with a different cheat per task (reading
 * the tests, an object equal to anything, exits at load, in an atexit hook and inside the function). The honest model
 * must score every sample, the cheater none; counted from the activity's results file. Needs `bwrap`; fails, never
 * skips, without it.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { readJsonl } from '../../activities/artifacts/store';
import { createEvaluate, type EvaluateResult } from '../../activities/evaluate/evaluate';
import { sandboxProblem } from '../../activities/verify/sandbox';
import { EvaluationSchema } from '../../schemas/run-spec';
import { ANY_TASK_CHEATS } from './code-cheat-programs';

const repoRoot = path.resolve(__dirname, '..', '..');
const benchDir = process.env.DISTILLERY_BENCHMARKS ?? path.join(repoRoot, '..', 'shared', 'data', 'benchmarks');
const ITEMS = 5;

interface Row {
  task_id: string;
  prompt: string;
  canonical_solution: string;
  entry_point: string;
}

const fence = (code: string) => `<think>\nDone.\n</think>\n\n\`\`\`python\n${code}\n\`\`\`\n`;

/** One cheat per task, each written for any HumanEval task. */
const CHEATS: Array<[string, (r: Row) => string]> = Object.values(ANY_TASK_CHEATS).map((c) => [
  c.what,
  (r) => c.program(r.entry_point),
]);

/** An OpenAI-compatible endpoint that answers each HumanEval prompt from a table, by model name. */
function scriptedEndpoint(rows: Row[]): http.Server {
  return http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { model, messages } = JSON.parse(body) as { model: string; messages: { content: string }[] };
      const prompt = messages.at(-1)!.content;
      const i = rows.findIndex((r) => prompt.includes(r.prompt));
      let content = 'I cannot tell.';
      if (i >= 0)
        content = fence(
          model === 'honest' ? rows[i]!.prompt + rows[i]!.canonical_solution : CHEATS[i % CHEATS.length]![1](rows[i]!),
        );
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: `chatcmpl-${i}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
    });
  });
}

describe('HumanEval evaluation through the evaluate activity', () => {
  let runDir = '';
  let server: http.Server;
  let result: EvaluateResult;

  beforeAll(async () => {
    const problem = await sandboxProblem();
    if (problem) throw new Error(`sandbox unavailable: ${problem}`);
    const file = path.join(benchDir, 'humaneval.jsonl');
    const rows = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .slice(0, ITEMS)
      .map((l) => JSON.parse(l) as Row);
    server = scriptedEndpoint(rows);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'code-evaluate-'));
    // This process is the worker here: its data roots hold the benchmark files, wherever the checkout keeps them.
    process.env.DISTILLERY_DATA_ROOTS = [benchDir, os.tmpdir()].join(path.delimiter);
    result = await createEvaluate()({
      runDir,
      evaluation: EvaluationSchema.parse({
        benchmark: { type: 'builtin', task: 'arithmetic', count: 2, seed: 0 },
        k: 1,
        maxNewTokens: 512,
        seed: 1,
      }),
      models: [
        { name: 'honest', endpoint: { baseURL, model: 'honest' } },
        { name: 'cheater', endpoint: { baseURL, model: 'cheater' } },
      ],
      maxLen: 128,
      benchmarks: [{ type: 'humaneval', path: file, limit: ITEMS }],
    });
  });

  afterAll(() => {
    server?.close();
    if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  });

  test('the honest model scores every task, the cheater none (counted from results.jsonl)', async () => {
    const rows: Array<{ model: string; benchmark: string; itemId: string; verdict: string; correct: boolean }> = [];
    for await (const r of readJsonl<(typeof rows)[number]>(result.results))
      if (r.benchmark === 'humaneval') rows.push(r);
    const count = (model: string, correct: boolean) =>
      rows.filter((r) => r.model === model && r.correct === correct).length;
    expect({
      honest: count('honest', true),
      cheater: count('cheater', true),
      cheaterRejected: count('cheater', false),
    }).toEqual({ honest: ITEMS, cheater: 0, cheaterRejected: ITEMS });
    const cheats = rows.filter((r) => r.model === 'cheater').map((r) => [r.itemId, r.verdict]);
    expect(cheats).toEqual(Array.from({ length: ITEMS }, (_, i) => [`HumanEval/${i}`, 'incorrect']));
  });

  test("the activity's scores say the same", () => {
    const he = result.benchmarks!.find((b) => b.name === 'humaneval')!;
    expect(he.scores.map((s) => [s.name, s.correct, s.samples])).toEqual([
      ['honest', ITEMS, ITEMS],
      ['cheater', 0, ITEMS],
    ]);
  });
});
