/**
 * The benchmark loaders against the real files, as published (../shared/data/benchmarks beside the clone, which CI
 * has; DISTILLERY_BENCHMARKS overrides the folder; never copied into the repo), and against small hand-written files
 * for the formats and failures the real ones do not show.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BenchmarkFormatError,
  CHOICE_INSTRUCTION,
  R1_MATH_INSTRUCTION,
  gsm8kGold,
  loadBenchmark,
  type Benchmark,
} from '../../activities/evaluate/benchmarks';
import { splitOf, countCarries } from '../../activities/dataset/arithmetic-task';
import { prepareDataset } from '../../activities/prepare/prepare-dataset';
import { readJsonl } from '../../activities/artifacts/store';
import { DatasetSchema } from '../../schemas/run-spec';
import type { PromptRow } from '../../schemas/artifact';
import { sandboxProblem } from '../../activities/verify/sandbox';
import { verifySample, verifySampleAsync } from '../../activities/verify/verify-sample';

const repoRoot = path.resolve(__dirname, '..', '..');
const benchDir = process.env.DISTILLERY_BENCHMARKS ?? path.join(repoRoot, '..', 'shared', 'data', 'benchmarks');
const bench = (f: string) => path.join(benchDir, f);

/** Every gold must be one the benchmark's own verifier accepts when a response states exactly it. */
function goldsSelfVerify(b: Benchmark): string[] {
  return b.items
    .filter(
      (it) =>
        !verifySample(
          { content: `The answer is \\boxed{${it.answer}}.`, answer: it.answer, task: it.task as 'math' | 'choice' },
          'math',
        ).correct,
    )
    .map((it) => `${it.id}: ${it.answer}`);
}

describe('public benchmark files', () => {
  test('MATH-500: problem, answer, level → difficulty', async () => {
    const b = await loadBenchmark({ type: 'math500', path: bench('math500.jsonl') });
    expect(b.name).toBe('math500');
    expect(b.task).toBe('math');
    expect(b.items).toHaveLength(500);
    const first = b.items[0]!;
    expect(first.id).toBe('test/precalculus/807.json');
    expect(first.prompt.startsWith('Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.')).toBe(
      true,
    );
    expect(first.prompt.endsWith(`\n${R1_MATH_INSTRUCTION}`)).toBe(true);
    expect(first.answer).toBe('\\left( 3, \\frac{\\pi}{2} \\right)');
    expect(first.difficulty).toBe(2);
    const levels: Record<string, number> = {};
    for (const it of b.items) levels[String(it.difficulty)] = (levels[String(it.difficulty)] ?? 0) + 1;
    expect(levels).toEqual({ '1': 43, '2': 90, '3': 105, '4': 128, '5': 134 });
    expect(new Set(b.items.map((it) => it.id)).size).toBe(500);
    expect(goldsSelfVerify(b)).toEqual([]);
  });

  test('AIME 2024 and AMC 2023: problem, answer (a number in AMC: 27.0 → "27")', async () => {
    const aime = await loadBenchmark({ type: 'aime', path: bench('aime24.jsonl') });
    expect(aime.name).toBe('aime24');
    expect(aime.items).toHaveLength(30);
    expect(aime.items[0]).toMatchObject({ id: 'aime24-60', answer: '204', task: 'math' });
    expect(aime.items.every((it) => /^\d{1,3}$/.test(it.answer) && it.difficulty === undefined)).toBe(true);
    expect(goldsSelfVerify(aime)).toEqual([]);
    const amc = await loadBenchmark({ type: 'aime', path: bench('amc23.jsonl') });
    expect(amc.items).toHaveLength(40);
    expect(amc.items[0]!.answer).toBe('27');
    expect(amc.items[0]!.prompt.startsWith('Cities $A$ and $B$ are $45$ miles apart.')).toBe(true);
    expect(goldsSelfVerify(amc)).toEqual([]);
  });

  test('GSM8K: question, the number after ####', async () => {
    const b = await loadBenchmark({ type: 'gsm8k', path: bench('gsm8k_test.jsonl') });
    expect(b.items).toHaveLength(1319);
    expect(b.items[0]).toMatchObject({ id: 'gsm8k-0', answer: '18', task: 'math' });
    expect(b.items[0]!.prompt.startsWith('Janet’s ducks lay 16 eggs per day.')).toBe(true);
    expect(b.items.every((it) => /^-?[\d.]+$/.test(it.answer))).toBe(true);
    expect(goldsSelfVerify(b)).toEqual([]);
    const train = await loadBenchmark({
      type: 'gsm8k',
      path: bench('gsm8k_train.jsonl'),
      limit: 10,
      name: 'gsm8k-train',
    });
    expect(train.items).toHaveLength(10);
    expect(train.items[0]).toMatchObject({ id: 'gsm8k-train-0', answer: '72' });
  });

  test('HumanEval: prompt, test, entry_point become the code verifier tests', async () => {
    const b = await loadBenchmark({ type: 'humaneval', path: bench('humaneval.jsonl') });
    expect(b.items).toHaveLength(164);
    const it = b.items[0]!;
    expect(it.id).toBe('HumanEval/0');
    expect(it.task).toBe('code');
    expect(it.tests).toMatchObject({ language: 'python', entryPoint: 'has_close_elements' });
    expect(it.tests!.prompt.startsWith('from typing import List')).toBe(true);
    expect(it.tests!.test).toContain('def check(candidate)');
    expect(it.prompt).toContain('```python\nfrom typing import List');
  });

  test('HumanEval items run in the code verifier: the canonical solution passes, a wrong one fails', async () => {
    // The code verifier needs its sandbox (bubblewrap): without it this test fails rather than pass unseen.
    const problem = await sandboxProblem();
    if (problem)
      throw new Error(`the code sandbox cannot run here (${problem}): apt-get install -y bubblewrap (.ci/run does)`);
    const raw = fs
      .readFileSync(bench('humaneval.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .slice(0, 3)
      .map((l) => JSON.parse(l) as { task_id: string; prompt: string; canonical_solution: string });
    const b = await loadBenchmark({ type: 'humaneval', path: bench('humaneval.jsonl'), limit: 3 });
    for (const [i, it] of b.items.entries()) {
      const fence = (code: string) => `<think>ok</think>\n\`\`\`python\n${code}\n\`\`\``;
      const sample = (content: string) => ({ content, answer: it.answer, task: it.task, tests: it.tests });
      const good = await verifySampleAsync(sample(fence(raw[i]!.prompt + raw[i]!.canonical_solution)), {
        type: 'code',
      });
      expect([it.id, good.verdict]).toEqual([it.id, 'correct']);
      const bad = await verifySampleAsync(sample(fence(`${raw[i]!.prompt}    return None\n`)), { type: 'code' });
      expect([it.id, bad.verdict]).toEqual([it.id, 'incorrect']);
    }
  });
});

describe('the builtin arithmetic benchmark', () => {
  test('the held-out split, with the number of carries as difficulty', async () => {
    const b = await loadBenchmark({ type: 'builtin', task: 'arithmetic', count: 200, seed: 0 });
    expect(b.name).toBe('arithmetic-2digit-heldout');
    expect(b.items).toHaveLength(200);
    for (const it of b.items) {
      const [question, instruction] = it.prompt.split('\n');
      expect(instruction).toBe(R1_MATH_INSTRUCTION);
      const [, a, op, c] = /^Compute (\d+)([+-])(\d+)\.$/.exec(question!)!;
      expect(splitOf(Number(a), op as '+', Number(c))).toBe('heldout');
      expect(it.difficulty).toBe(countCarries(Number(a), op as '+', Number(c)));
      expect(it.answer).toBe(String(Number(a) + Number(c)));
    }
    // 2-digit sums have 0, 1 or 2 carries, and a sample of 200 has all three
    expect(new Set(b.items.map((it) => it.difficulty))).toEqual(new Set([0, 1, 2]));
    const again = await loadBenchmark({ type: 'builtin', task: 'arithmetic', count: 200, seed: 0 });
    expect(again.items).toEqual(b.items);
  });

  test('a model is evaluated on the prompt it was trained on: the builtin dataset poses its problems the same way', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'posed-'));
    const prepared = await prepareDataset({
      artifactRoot: root,
      runId: 'posed',
      dataset: DatasetSchema.parse({ source: { type: 'builtin', task: 'arithmetic', count: 50, seed: 1 } }),
      shardSize: 50,
    });
    const train: string[] = [];
    for await (const r of readJsonl<PromptRow>(prepared.prompts)) train.push(r.prompt);
    const held = (await loadBenchmark({ type: 'builtin', task: 'arithmetic', count: 50, seed: 2 })).items.map(
      (it) => it.prompt,
    );
    const shape = (p: string) => p.replace(/\d+/g, 'N');
    expect(new Set(train.map(shape))).toEqual(new Set([`Compute N+N.\n${R1_MATH_INSTRUCTION}`]));
    expect(new Set(held.map(shape))).toEqual(new Set([`Compute N+N.\n${R1_MATH_INSTRUCTION}`]));
    fs.rmSync(root, { recursive: true, force: true });
  });
});

describe('formats and failures, on small files', () => {
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'benchmarks-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, rows: unknown[] | string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, typeof rows === 'string' ? rows : rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return p;
  };

  test('GPQA-style multiple choice: choices as an object, a list or A..D fields; in the file order', async () => {
    const p = file('gpqa-mini.jsonl', [
      {
        id: 'q1',
        question: 'Which is a noble gas?',
        choices: { A: 'Oxygen', B: 'Neon', C: 'Iron', D: 'Carbon' },
        answer: 'B',
      },
      { question: 'Which planet is largest?', choices: ['Mars', 'Venus', 'Jupiter', 'Earth'], answer: '(c)' },
      { question: '2+2?', A: '3', B: '5', C: '6', D: '4', answer: 'D' },
    ]);
    const b = await loadBenchmark({ type: 'gpqa', path: p });
    expect(b.name).toBe('gpqa-mini');
    expect(b.task).toBe('choice');
    expect(b.items.map((it) => [it.id, it.answer])).toEqual([
      ['q1', 'B'],
      ['gpqa-mini-1', 'C'],
      ['gpqa-mini-2', 'D'],
    ]);
    expect(b.items[0]!.prompt).toBe(
      `Which is a noble gas?\n\nA) Oxygen\nB) Neon\nC) Iron\nD) Carbon\n\n${CHOICE_INSTRUCTION}`,
    );
    // the choice verifier reads the letter of an answer in this format
    const v = verifySample(
      {
        content: '<think>Neon is inert.</think>\nThe answer is \\boxed{B}.',
        answer: b.items[0]!.answer,
        task: 'choice',
      },
      'choice',
    );
    expect(v.verdict).toBe('correct');
    // no instruction when asked for none
    const bare = await loadBenchmark({ type: 'gpqa', path: p, instruction: '' });
    expect(bare.items[2]!.prompt).toBe('2+2?\n\nA) 3\nB) 5\nC) 6\nD) 4\n');
  });

  test('a row that cannot be read stops the load with its file and line', async () => {
    const cases: [string, Parameters<typeof loadBenchmark>[0]['type'], unknown[] | string, RegExp][] = [
      ['bad-json.jsonl', 'aime', '{"problem":"x","answer":"1"}\n{not json\n', /bad-json\.jsonl:2: not valid JSON/],
      [
        'no-answer.jsonl',
        'aime',
        [{ problem: 'x', answer: '1' }, { problem: 'y' }],
        /no-answer\.jsonl:2: missing or empty field "answer"/,
      ],
      [
        'no-hashes.jsonl',
        'gsm8k',
        [{ question: 'q', answer: 'just 5' }],
        /no-hashes\.jsonl:1: answer has no "#### N" line/,
      ],
      [
        'three.jsonl',
        'gpqa',
        [{ question: 'q', choices: ['a', 'b', 'c'], answer: 'A' }],
        /three\.jsonl:1: needs exactly four/,
      ],
      [
        'letter.jsonl',
        'gpqa',
        [{ question: 'q', choices: ['a', 'b', 'c', 'd'], answer: 'E' }],
        /letter\.jsonl:1: answer is not a letter/,
      ],
      [
        'level.jsonl',
        'math500',
        [{ problem: 'p', answer: '1', level: 'hard' }],
        /level\.jsonl:1: level is not a number/,
      ],
      [
        'dup.jsonl',
        'math500',
        [
          { unique_id: 'a', problem: 'p', answer: '1', level: 1 },
          { unique_id: 'a', problem: 'q', answer: '2', level: 2 },
        ],
        /dup\.jsonl:2: duplicate id "a"/,
      ],
      [
        'entry.jsonl',
        'humaneval',
        [{ task_id: 'T/0', prompt: 'def f():\n', test: 'assert 1', entry_point: 'f()' }],
        /entry\.jsonl:1: entry_point is not an identifier/,
      ],
      ['empty.jsonl', 'aime', '\n\n', /empty\.jsonl:0: no rows/],
    ];
    for (const [name, type, rows, re] of cases) {
      const err = await loadBenchmark({ type, path: file(name, rows) } as Parameters<typeof loadBenchmark>[0]).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BenchmarkFormatError);
      expect((err as Error).message).toMatch(re);
    }
  });

  test('MATH "Level 3" strings, limit, and a replaced instruction', async () => {
    const p = file('math-mini.jsonl', [
      { problem: 'What is $1+1$?', answer: '2', level: 'Level 3', type: 'Algebra' },
      { problem: 'What is $2+2$?', answer: '4', level: 5 },
    ]);
    const b = await loadBenchmark({ type: 'math500', path: p, limit: 1, instruction: 'Box it.', name: 'mini' });
    expect(b.items).toEqual([
      { id: 'math500-0', prompt: 'What is $1+1$?\nBox it.', answer: '2', task: 'math', difficulty: 3 },
    ]);
  });

  test('gsm8kGold', () => {
    expect(gsm8kGold('a\nb\n#### 72')).toBe('72');
    expect(gsm8kGold('x #### 1,000,000 ')).toBe('1000000');
    expect(gsm8kGold('#### -3.5')).toBe('-3.5');
    expect(gsm8kGold('no answer')).toBeNull();
  });
});
