/**
 * `distill verify <file.jsonl>`: audit a file of graded answers with the pipeline's own verifiers.
 *
 * Each input row: {gold, response, task?, tests?, prompt?} (`answer` is accepted for `gold`). `task` is one of
 * math | choice | exact | regex | code | judge (default: --task, else code when the row has `tests`, else math);
 * code rows carry their tests in `tests` (or as JSON in `gold`), see activities/verify/code.ts.
 * Each row is written back (JSONL, stdout or --out, input order) with `verdict`, `extracted` and `reason` added
 * (plus `failure` for code and `judge` for judged rows); one summary line goes to stderr. Rows that are not JSON
 * objects or lack the fields get verdict `invalid_row`; a judge or sandbox failure gives verdict `error` and exit 1.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import * as readline from 'node:readline';
import type { Command } from 'commander';
import { SandboxUnavailableError } from '../activities/verify/sandbox';
import { JudgeError, type JudgeConfig } from '../activities/verify/judge';
import { withKeyGrant } from '../activities/security/key-policy';
import { loadWorkerPolicy } from '../activities/security/worker-policy';
import {
  isTaskType,
  TASK_TYPES,
  verifySampleAsync,
  type SampleVerdict,
  type TaskType,
} from '../activities/verify/verify-sample';

export interface VerifyFileOptions {
  file: string;
  out?: string;
  task?: TaskType;
  concurrency?: number;
  ignoreCase?: boolean;
  judge?: JudgeConfig;
  code?: { timeoutSeconds?: number; memoryMb?: number };
}

export interface VerifyFileSummary {
  rows: number;
  counts: Record<string, number>;
  byTask: Record<string, number>;
  correct: number;
  errors: number;
  seconds: number;
}

type Row = Record<string, unknown>;

async function verifyRow(
  line: string,
  o: VerifyFileOptions,
): Promise<{
  row: Row;
  task: string;
  v: Pick<SampleVerdict, 'verdict' | 'extracted' | 'reason'> & Partial<SampleVerdict>;
}> {
  let row: Row;
  try {
    const parsed = JSON.parse(line) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    row = parsed as Row;
  } catch (e) {
    return {
      row: { line },
      task: '?',
      v: { verdict: 'invalid_row', extracted: null, reason: `not a JSON object: ${(e as Error).message}` },
    };
  }
  const task = row.task ?? o.task ?? (row.tests !== undefined ? 'code' : 'math');
  if (!isTaskType(task))
    return {
      row,
      task: String(task),
      v: {
        verdict: 'invalid_row',
        extracted: null,
        reason: `unknown task ${JSON.stringify(task)} (${TASK_TYPES.join(', ')})`,
      },
    };
  const gold = row.gold ?? row.answer;
  const response = row.response;
  if (typeof response !== 'string')
    return { row, task, v: { verdict: 'invalid_row', extracted: null, reason: 'row has no string "response"' } };
  if (
    typeof gold !== 'string' &&
    typeof gold !== 'number' &&
    !(task === 'code' && row.tests !== undefined) &&
    task !== 'judge'
  ) {
    return { row, task, v: { verdict: 'invalid_row', extracted: null, reason: 'row has no "gold"' } };
  }
  try {
    const v = await verifySampleAsync(
      {
        content: response,
        answer: gold === undefined || gold === null ? '' : String(gold),
        prompt: typeof row.prompt === 'string' ? row.prompt : undefined,
        task,
        tests: row.tests,
      },
      { type: task, ignoreCase: o.ignoreCase, judge: o.judge, code: o.code },
    );
    return { row, task, v };
  } catch (e) {
    if (e instanceof JudgeError || e instanceof SandboxUnavailableError)
      return { row, task, v: { verdict: 'error', extracted: null, reason: e.message } };
    throw e;
  }
}

/** Verifies every row of a JSONL file; rows go out in input order, `concurrency` verified at a time. */
export async function verifyFile(o: VerifyFileOptions): Promise<VerifyFileSummary> {
  const started = Date.now();
  const out: WriteStream | NodeJS.WriteStream = o.out ? createWriteStream(o.out) : process.stdout;
  const input = createReadStream(o.file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  await opened;
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  const limit = Math.max(1, o.concurrency ?? 4);
  const summary: VerifyFileSummary = { rows: 0, counts: {}, byTask: {}, correct: 0, errors: 0, seconds: 0 };
  const pending: Array<Promise<Awaited<ReturnType<typeof verifyRow>>>> = [];
  const write = (s: string) =>
    new Promise<void>((resolve) => (out.write(s) ? resolve() : out.once('drain', () => resolve())));
  const drainOne = async () => {
    const r = await pending.shift()!;
    const { verdict, extracted, reason, failure, judge, task: decidedBy } = r.v;
    const outRow: Row = { ...r.row, verdict, extracted, reason };
    if (failure) outRow.failure = failure;
    if (judge) outRow.judge = judge;
    if (decidedBy && decidedBy !== r.task) outRow.verifiedBy = decidedBy;
    await write(JSON.stringify(outRow) + '\n');
    summary.rows += 1;
    summary.counts[verdict] = (summary.counts[verdict] ?? 0) + 1;
    summary.byTask[r.task] = (summary.byTask[r.task] ?? 0) + 1;
    if (verdict === 'correct') summary.correct += 1;
    if (verdict === 'error') summary.errors += 1;
  };
  for await (const line of rl) {
    if (!line.trim()) continue;
    pending.push(verifyRow(line, o));
    if (pending.length >= limit) await drainOne();
  }
  while (pending.length) await drainOne();
  if (o.out)
    await new Promise<void>((resolve, reject) =>
      (out as WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())),
    );
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

export function summaryLine(s: VerifyFileSummary): string {
  const pct = (n: number) => (s.rows ? ((100 * n) / s.rows).toFixed(1) : '0.0');
  const counts = Object.entries(s.counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const tasks = Object.entries(s.byTask)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return `verified ${s.rows} rows: ${s.correct} correct (${pct(s.correct)}%) — ${counts || 'none'} — tasks: ${tasks || 'none'} — ${s.seconds.toFixed(2)}s`;
}

const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
};

/** Adds `verify <file.jsonl>` to the `distill` program. */
export function registerVerifyCommand(program: Command): Command {
  return program
    .command('verify <file>')
    .description(
      'Verify a JSONL file of {gold, response[, task, tests, prompt]} rows; each row comes back with verdict, extracted and reason',
    )
    .option('--out <file>', 'write the rows here instead of stdout')
    .option('--task <task>', `default task of rows without one: ${TASK_TYPES.join(' | ')}`)
    .option('--concurrency <n>', 'rows verified at a time (code runs, judge calls)', positiveInt('--concurrency'), 4)
    .option('--ignore-case', 'exact match ignores case')
    .option('--timeout <seconds>', 'code: wall-clock limit per run', positiveInt('--timeout'))
    .option('--memory <mb>', 'code: memory limit per run (MiB)', positiveInt('--memory'))
    .option('--judge-url <url>', 'LLM judge: OpenAI-compatible base URL (…/v1); also used for unparseable golds')
    .option('--judge-model <model>', 'LLM judge: model name')
    .option('--judge-key-env <NAME>', 'LLM judge: NAME of the environment variable holding the API key')
    .option('--rubric <text>', 'LLM judge: grading rubric')
    .action(async (file: string, opts: Record<string, unknown>) => {
      if (opts.task !== undefined && !isTaskType(opts.task)) {
        process.stderr.write(`distill verify: --task must be one of ${TASK_TYPES.join(', ')}\n`);
        process.exitCode = 2;
        return;
      }
      if (!!opts.judgeUrl !== !!opts.judgeModel) {
        process.stderr.write('distill verify: --judge-url and --judge-model go together\n');
        process.exitCode = 2;
        return;
      }
      const judge: JudgeConfig | undefined = opts.judgeUrl
        ? {
            baseURL: String(opts.judgeUrl),
            model: String(opts.judgeModel),
            apiKeyEnv: opts.judgeKeyEnv as string | undefined,
            rubric: opts.rubric as string | undefined,
          }
        : undefined;
      let s: VerifyFileSummary;
      try {
        // The person at the terminal owns this process's keys: naming one on the command line grants it for this judge.
        if (judge?.apiKeyEnv)
          process.env.DISTILLERY_KEY_POLICY = JSON.stringify(
            withKeyGrant(loadWorkerPolicy().keys, judge.apiKeyEnv, judge.baseURL),
          );
        s = await verifyFile({
          file,
          out: opts.out as string | undefined,
          task: opts.task as TaskType | undefined,
          concurrency: opts.concurrency as number,
          ignoreCase: !!opts.ignoreCase,
          judge,
          code: { timeoutSeconds: opts.timeout as number | undefined, memoryMb: opts.memory as number | undefined },
        });
      } catch (e) {
        process.stderr.write(`distill verify: ${(e as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      process.stderr.write(summaryLine(s) + '\n');
      if (s.errors) process.exitCode = 1;
    });
}
