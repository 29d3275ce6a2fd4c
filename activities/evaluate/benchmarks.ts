/**
 * Benchmarks the evaluate activity scores models on: the project's own held-out arithmetic split, and public
 * benchmarks read from local JSONL files as published (nothing is downloaded at run time):
 *
 *   type        fields read                                         task     difficulty
 *   math500     problem, answer, level (1–5 or "Level 3"), unique_id  math     level
 *   aime        problem, answer (string or number), id              math     —        (also AMC23 and the like)
 *   gsm8k       question, answer ("…reasoning…\n#### 72")           math     —
 *   gpqa        question, choices {A..D} | [4] | A..D fields,        choice   —        (no shuffling: the file's order)
 *               answer (letter)
 *   humaneval   task_id, prompt, test, entry_point                  code     —
 *   builtin     generateArithmeticProblems(split 'heldout')         math     carries
 *
 * A benchmark is taken whole or not at all: a row that cannot be read stops the load with its file and line (a
 * silently dropped row would change the denominator every score is compared on). `limit` takes the first N rows.
 *
 * Prompts: math-style items get R1's evaluation instruction ("Please reason step by step, and put your final answer
 * within \boxed{}."), multiple choice asks for the letter in \boxed{}, code asks for the function in a ```python
 * block; `instruction` replaces the default ('' for none). The builtin arithmetic task is posed with R1's
 * instruction too, as its training prompts are (arithmetic-task.ts `posedArithmeticPrompt`).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  generateArithmeticProblems,
  posedArithmeticPrompt,
  R1_MATH_INSTRUCTION,
  type ArithOp,
} from '../dataset/arithmetic-task';
import { ParquetFileError, readParquetRows } from '../dataset/parquet-rows';
import { generateNumberWordsProblems } from '../dataset/number-words-task';

export type BenchmarkTask = 'math' | 'choice' | 'code' | 'exact';

export interface BenchmarkItem {
  id: string;
  /** What the model is asked (instruction included). */
  prompt: string;
  /** The gold answer: a math expression, an option letter, or '' for code (the tests decide). */
  answer: string;
  task: BenchmarkTask;
  /** Difficulty bucket: arithmetic carries, MATH level. */
  difficulty?: number;
  /** Code: the tests in the code verifier's format ({language, test, entryPoint, prompt}). */
  tests?: { language: 'python'; test: string; entryPoint: string; prompt: string };
  meta?: Record<string, unknown>;
}

export interface Benchmark {
  name: string;
  task: BenchmarkTask;
  items: BenchmarkItem[];
}

export type FileBenchmarkType = 'math500' | 'aime' | 'gsm8k' | 'gpqa' | 'humaneval';
export const FILE_BENCHMARK_TYPES: readonly FileBenchmarkType[] = ['math500', 'aime', 'gsm8k', 'gpqa', 'humaneval'];

export interface FileBenchmarkSource {
  type: FileBenchmarkType;
  /** JSONL file, or Parquet (.parquet); relative paths resolve against the worker's working directory. */
  path: string;
  /** Reported name (default: math500, gsm8k, humaneval; for aime and gpqa the file's base name). */
  name?: string;
  /** Only the first N rows. */
  limit?: number;
  /** Replaces the default instruction; '' for none. */
  instruction?: string;
}

export interface BuiltinBenchmarkSource {
  type: 'builtin';
  task: 'arithmetic';
  count: number;
  seed: number;
  digits?: number;
  ops?: ArithOp[];
  name?: string;
}

/** The non-reasoning task's held-out split: numbers written in words, graded by exact match. */
export interface NumberWordsBenchmarkSource {
  type: 'builtin';
  task: 'number-words';
  count: number;
  seed: number;
  maxValue?: number;
  name?: string;
}

export type BenchmarkSource = FileBenchmarkSource | BuiltinBenchmarkSource | NumberWordsBenchmarkSource;

export function loadNumberWords(src: Omit<NumberWordsBenchmarkSource, 'type' | 'task'>): Benchmark {
  const items = generateNumberWordsProblems({
    seed: src.seed,
    count: src.count,
    split: 'heldout',
    maxValue: src.maxValue,
  });
  return {
    name: src.name ?? 'number-words-heldout',
    task: 'exact',
    items: items.map((p) => ({ id: p.id, prompt: p.prompt, answer: p.answer, task: 'exact' })),
  };
}

export { R1_MATH_INSTRUCTION };
export const CHOICE_INSTRUCTION =
  'Please reason step by step, and put the letter of your final answer (A, B, C or D) within \\boxed{}.';
export const CODE_INSTRUCTION =
  'Complete the following Python function. Reply with the whole function in a ```python code block.';

export class BenchmarkFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'BenchmarkFormatError';
  }
}

/** The builtin arithmetic benchmark's name, as the evaluate activity has always reported it. */
export function arithmeticBenchmarkName(digits = 2): string {
  return `arithmetic-${digits}digit-heldout`;
}

export function loadArithmetic(src: Omit<BuiltinBenchmarkSource, 'type' | 'task'>): Benchmark {
  const items = generateArithmeticProblems({
    seed: src.seed,
    count: src.count,
    split: 'heldout',
    digits: src.digits,
    ops: src.ops,
  });
  return {
    name: src.name ?? arithmeticBenchmarkName(src.digits ?? 2),
    task: 'math',
    items: items.map((p) => ({
      id: p.id,
      prompt: posedArithmeticPrompt(p),
      answer: p.answer,
      task: 'math',
      difficulty: p.difficulty,
    })),
  };
}

/** Reads any benchmark source. */
export async function loadBenchmark(src: BenchmarkSource): Promise<Benchmark> {
  switch (src.type) {
    case 'builtin':
      return src.task === 'number-words' ? loadNumberWords(src) : loadArithmetic(src);
    case 'math500':
      return loadMath500(src);
    case 'aime':
      return loadAime(src);
    case 'gsm8k':
      return loadGsm8k(src);
    case 'gpqa':
      return loadGpqa(src);
    case 'humaneval':
      return loadHumanEval(src);
    default:
      throw new Error(`unknown benchmark type ${JSON.stringify((src as { type: unknown }).type)}`);
  }
}

/* ------------------------------------------------------------------------------------------------------------ */

type Row = Record<string, unknown>;

/** Rows of a benchmark file: JSONL, or Parquet by its .parquet extension (as Hugging Face serves these sets). */
async function readRows(file: string, limit?: number): Promise<{ line: number; row: Row }[]> {
  if (/\.parquet$/i.test(file)) return readParquetBenchmark(file, limit);
  const text = await fs.readFile(file, 'utf8');
  const out: { line: number; row: Row }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (limit !== undefined && out.length >= limit) break;
    const t = lines[i]!.trim();
    if (!t) continue;
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      throw new BenchmarkFormatError(file, i + 1, 'not valid JSON');
    }
    if (!v || typeof v !== 'object' || Array.isArray(v))
      throw new BenchmarkFormatError(file, i + 1, 'not a JSON object');
    out.push({ line: i + 1, row: v as Row });
  }
  if (!out.length) throw new BenchmarkFormatError(file, 0, 'no rows');
  return out;
}

async function readParquetBenchmark(file: string, limit?: number): Promise<{ line: number; row: Row }[]> {
  const out: { line: number; row: Row }[] = [];
  try {
    for await (const { row, value } of readParquetRows(file)) {
      if (limit !== undefined && out.length >= limit) break;
      out.push({ line: row, row: value });
    }
  } catch (err) {
    if (err instanceof ParquetFileError)
      throw new BenchmarkFormatError(file, 0, err.message.replace(`${file}`, 'the file'));
    throw err;
  }
  if (!out.length) throw new BenchmarkFormatError(file, 0, 'no rows');
  return out;
}

function str(file: string, line: number, row: Row, ...keys: string[]): string {
  for (const k of keys) {
    const v = row[k];
    if (typeof v === 'string' && v.trim()) return v;
  }
  throw new BenchmarkFormatError(
    file,
    line,
    `missing or empty field ${keys.map((k) => JSON.stringify(k)).join(' / ')}`,
  );
}

/** A gold answer that may be stored as a number (AMC23 stores 27.0; JSON.parse already makes that 27 → "27"). */
function answerText(file: string, line: number, row: Row): string {
  const v = row.answer;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && v.trim()) return v.trim();
  throw new BenchmarkFormatError(file, line, 'missing or empty field "answer"');
}

function withInstruction(body: string, instruction: string | undefined, dflt: string): string {
  const ins = instruction ?? dflt;
  return ins ? `${body}\n${ins}` : body;
}

function base(file: string): string {
  return path.basename(file).replace(/\.(jsonl?|parquet)$/i, '');
}

function checkUnique(file: string, items: BenchmarkItem[]): void {
  const seen = new Set<string>();
  items.forEach((it, i) => {
    if (seen.has(it.id)) throw new BenchmarkFormatError(file, i + 1, `duplicate id ${JSON.stringify(it.id)}`);
    seen.add(it.id);
  });
}

/** MATH-500: problem, answer, level → difficulty (1–5; "Level 3" as in Hendrycks' MATH also accepted). */
export async function loadMath500(src: Omit<FileBenchmarkSource, 'type'>): Promise<Benchmark> {
  const rows = await readRows(src.path, src.limit);
  const items = rows.map(({ line, row }, i): BenchmarkItem => {
    const lv = row.level;
    let difficulty: number | undefined;
    if (typeof lv === 'number' && Number.isFinite(lv)) difficulty = lv;
    else if (typeof lv === 'string' && /^\s*(?:level\s*)?(\d+)\s*$/i.test(lv))
      difficulty = Number(/(\d+)/.exec(lv)![1]);
    else if (lv !== undefined && lv !== null && lv !== '?' && lv !== 'Level ?')
      throw new BenchmarkFormatError(src.path, line, `level is not a number: ${JSON.stringify(lv)}`);
    const id =
      typeof row.unique_id === 'string'
        ? row.unique_id
        : typeof row.id === 'string' || typeof row.id === 'number'
          ? String(row.id)
          : `math500-${i}`;
    return {
      id,
      prompt: withInstruction(str(src.path, line, row, 'problem'), src.instruction, R1_MATH_INSTRUCTION),
      answer: answerText(src.path, line, row),
      task: 'math',
      ...(difficulty !== undefined ? { difficulty } : {}),
      ...(typeof row.subject === 'string' ? { meta: { subject: row.subject } } : {}),
    };
  });
  checkUnique(src.path, items);
  return { name: src.name ?? 'math500', task: 'math', items };
}

/** AIME-style competition sets (also AMC23): problem, answer (string or number), optional id. */
export async function loadAime(src: Omit<FileBenchmarkSource, 'type'>): Promise<Benchmark> {
  const rows = await readRows(src.path, src.limit);
  const name = src.name ?? base(src.path);
  const items = rows.map(({ line, row }, i): BenchmarkItem => ({
    id: typeof row.id === 'string' || typeof row.id === 'number' ? `${name}-${row.id}` : `${name}-${i}`,
    prompt: withInstruction(str(src.path, line, row, 'problem', 'question'), src.instruction, R1_MATH_INSTRUCTION),
    answer: answerText(src.path, line, row),
    task: 'math',
  }));
  checkUnique(src.path, items);
  return { name, task: 'math', items };
}

/** The gold of a GSM8K answer: the text after the last "####", thousands separators dropped. */
export function gsm8kGold(answer: string): string | null {
  const at = answer.lastIndexOf('####');
  if (at < 0) return null;
  const g = answer
    .slice(at + 4)
    .trim()
    .replace(/,(?=\d{3}\b)/g, '');
  return g || null;
}

/** GSM8K: question, answer with its reasoning and "#### N". Ids are `gsm8k-<row index>` (the file has none). */
export async function loadGsm8k(src: Omit<FileBenchmarkSource, 'type'>): Promise<Benchmark> {
  const rows = await readRows(src.path, src.limit);
  const name = src.name ?? 'gsm8k';
  const items = rows.map(({ line, row }, i): BenchmarkItem => {
    const gold = gsm8kGold(str(src.path, line, row, 'answer'));
    if (gold === null) throw new BenchmarkFormatError(src.path, line, 'answer has no "#### N" line');
    return {
      id: `${name}-${i}`,
      prompt: withInstruction(str(src.path, line, row, 'question'), src.instruction, R1_MATH_INSTRUCTION),
      answer: gold,
      task: 'math',
    };
  });
  return { name, task: 'math', items };
}

const LETTERS = ['A', 'B', 'C', 'D'] as const;

/**
 * GPQA-style multiple choice, in the file's order (no shuffling, so scores are reproducible across runs): question,
 * choices as {A,B,C,D} or a list of four, or top-level A..D fields; answer is the correct letter ("B", "(B)").
 */
export async function loadGpqa(src: Omit<FileBenchmarkSource, 'type'>): Promise<Benchmark> {
  const rows = await readRows(src.path, src.limit);
  const name = src.name ?? base(src.path);
  const items = rows.map(({ line, row }, i): BenchmarkItem => {
    const question = str(src.path, line, row, 'question', 'Question');
    const raw = row.choices ?? row.options;
    let choices: string[];
    if (Array.isArray(raw)) choices = raw.map((c) => String(c));
    else if (raw && typeof raw === 'object')
      choices = LETTERS.map((l) => (raw as Row)[l])
        .filter((c) => c !== undefined)
        .map(String);
    else
      choices = LETTERS.map((l) => row[l])
        .filter((c) => c !== undefined)
        .map(String);
    if (choices.length !== 4 || choices.some((c) => !c.trim()))
      throw new BenchmarkFormatError(src.path, line, 'needs exactly four non-empty choices A–D');
    const m = /^\s*\(?([A-Da-d])\)?\s*$/.exec(String(row.answer ?? ''));
    if (!m) throw new BenchmarkFormatError(src.path, line, `answer is not a letter A–D: ${JSON.stringify(row.answer)}`);
    const body = `${question.trim()}\n\n${choices.map((c, k) => `${LETTERS[k]}) ${c.trim()}`).join('\n')}\n`;
    return {
      id: typeof row.id === 'string' || typeof row.id === 'number' ? String(row.id) : `${name}-${i}`,
      prompt: withInstruction(body, src.instruction, CHOICE_INSTRUCTION),
      answer: m[1]!.toUpperCase(),
      task: 'choice',
    };
  });
  checkUnique(src.path, items);
  return { name, task: 'choice', items };
}

/** HumanEval-style code: the tests run in the code verifier's sandbox as prompt + completion + test + check(entry_point). */
export async function loadHumanEval(src: Omit<FileBenchmarkSource, 'type'>): Promise<Benchmark> {
  const rows = await readRows(src.path, src.limit);
  const items = rows.map(({ line, row }, i): BenchmarkItem => {
    const prompt = str(src.path, line, row, 'prompt');
    const test = str(src.path, line, row, 'test');
    const entryPoint = str(src.path, line, row, 'entry_point', 'entryPoint');
    if (!/^[A-Za-z_]\w*$/.test(entryPoint))
      throw new BenchmarkFormatError(src.path, line, `entry_point is not an identifier: ${JSON.stringify(entryPoint)}`);
    const ins = src.instruction ?? CODE_INSTRUCTION;
    return {
      id: typeof row.task_id === 'string' ? row.task_id : `humaneval-${i}`,
      prompt: `${ins ? `${ins}\n\n` : ''}\`\`\`python\n${prompt}\`\`\``,
      answer: '',
      task: 'code',
      tests: { language: 'python', test, entryPoint, prompt },
    };
  });
  checkUnique(src.path, items);
  return { name: src.name ?? 'humaneval', task: 'code', items };
}
