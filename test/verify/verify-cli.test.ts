/** `distill verify <file.jsonl>`: the registered command, driven programmatically as the CLI would run it. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { registerVerifyCommand } from '../../cli/verify-command';
import { sandboxProblem } from '../../activities/verify/sandbox';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-verify-cli-'));
  process.exitCode = undefined;
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  process.exitCode = undefined;
  jest.restoreAllMocks();
});

async function run(args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }> {
  const program = new Command('distill').exitOverride();
  registerVerifyCommand(program);
  let stdout = '';
  let stderr = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    await program.parseAsync(['node', 'distill', 'verify', ...args]);
  } finally {
    jest.restoreAllMocks();
  }
  const exitCode = process.exitCode === undefined ? undefined : Number(process.exitCode);
  return { stdout, stderr, exitCode };
}

const write = (name: string, rows: unknown[]) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return f;
};

test('each row comes back with verdict, extracted and reason, in input order; summary on stderr', async () => {
  const file = write('in.jsonl', [
    { id: 1, gold: '\\frac12', response: 'So $\\boxed{0.5}$.' },
    { id: 2, gold: '\\pi', response: 'About \\boxed{3.14}.' },
    { id: 3, gold: '(B)', response: 'The answer is B.', task: 'choice' },
    { id: 4, gold: 'Paris', response: '<think>x</think>\nParis', task: 'exact' },
    { id: 5, gold: '4', response: '<think>never finished' },
    '{not json',
    { id: 7, gold: '1', response: 'x', task: 'poetry' },
    { id: 8, gold: '\\int_0^1 x\\,dx', response: '\\boxed{1/2}' },
  ]);
  const out = path.join(dir, 'out.jsonl');
  const r = await run([file, '--out', out]);
  expect(r.exitCode).toBeUndefined();
  const rows = fs
    .readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(rows.map((x) => x.verdict)).toEqual([
    'correct',
    'incorrect',
    'correct',
    'correct',
    'no_answer',
    'invalid_row',
    'invalid_row',
    'unparseable_gold',
  ]);
  expect(rows[0]).toMatchObject({ id: 1, gold: '\\frac12', response: 'So $\\boxed{0.5}$.', extracted: '0.5' });
  expect(rows[1].reason).toMatch(/boxed/);
  expect(rows[2].extracted).toBe('B');
  expect(rows[5].line).toBe('{not json');
  for (const x of rows) expect(typeof x.reason).toBe('string');
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^verified 8 rows: 3 correct \(37\.5%\)/);
  expect(r.stderr).toContain('invalid_row 2');
});

test('thousands separators written as spaces are not products: 45\\,000 and 1\\ 000 are not 0', async () => {
  const file = write('sep.jsonl', [
    { gold: '0', response: '\\boxed{45\\,000}' },
    { gold: '0', response: '\\boxed{1\\ 000}' },
    { gold: '45000', response: '\\boxed{45\\,000}' },
    { gold: '1000', response: '\\boxed{1\\ 000}' },
  ]);
  const r = await run([file]);
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(rows.map((x) => [x.verdict, x.extracted])).toEqual([
    ['incorrect', '45\\,000'],
    ['incorrect', '1\\ 000'],
    ['correct', '45\\,000'],
    ['correct', '1\\ 000'],
  ]);
  expect(r.stderr).toMatch(/verified 4 rows: 2 correct/);
});

test('--task sets the default; output goes to stdout without --out', async () => {
  const file = write('in.jsonl', [
    { gold: 'C', response: '**Answer:** (C)' },
    { gold: 'C', response: 'The answer is D.' },
  ]);
  const r = await run([file, '--task', 'choice']);
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(rows.map((x) => [x.verdict, x.extracted])).toEqual([
    ['correct', 'C'],
    ['incorrect', 'D'],
  ]);
  expect(r.stderr).toMatch(/verified 2 rows: 1 correct/);
});

test('code rows with tests run in the sandbox', async () => {
  const problem = await sandboxProblem();
  if (problem) throw new Error(`sandbox unavailable: ${problem}`);
  const tests = { cases: [{ input: '3\n', output: '9' }] };
  const file = write('code.jsonl', [
    { task: 'code', tests, response: '```python\nn = int(input())\nprint(n * n)\n```' },
    { tests, response: '```python\nprint(int(input()) + 6)\n```\n' },
    { task: 'code', tests, response: '```python\nimport os\nwhile True: os.fork()\n```' },
  ]);
  const r = await run([file, '--timeout', '2']);
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(rows.map((x) => x.verdict)).toEqual(['correct', 'correct', 'incorrect']);
  expect(rows[0].extracted).toBe('n = int(input())\nprint(n * n)');
  expect(rows[2].failure).toMatch(/timeout|cpu_limit|signal|runtime_error/); // the process limit makes fork() fail
});

test('bad usage: unknown --task, missing file', async () => {
  const file = write('in.jsonl', [{ gold: '1', response: '1' }]);
  expect((await run([file, '--task', 'poetry'])).exitCode).toBe(2);
  const missing = await run([path.join(dir, 'nope.jsonl')]);
  expect(missing.exitCode).toBe(2);
  expect(missing.stderr).toMatch(/ENOENT/);
});
