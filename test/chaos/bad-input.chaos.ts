import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { generateArithmeticProblems } from '../../activities/dataset/arithmetic-task';
import { readJsonl } from '../../activities/artifacts/store';
import { pythonBin } from '../../infra/paths';
import type { PromptRow, RejectRow } from '../../schemas/artifact';
import type { RunSummary } from '../../workflows/distillation';
import { accountingProblems, accountRun, chaosSpec, useChaosStack, type ChaosStack } from './harness';
import { recordFailedRun, recordRow } from './table';

/**
 * Bad input through the real pipeline (dev server, worker processes): a JSONL dataset with every kind of bad row
 * goes from prepare to evaluation, each bad row must leave a quarantine entry with its reason, and every stage must
 * account for its rows (in = kept + rejected + quarantined). Inputs that cannot make a run (an empty dataset, only
 * bad rows, a missing file, invalid spec values, a corrupt Parquet file) must fail at once with an error that says why.
 * A Parquet dataset's bad rows are quarantined like JSONL's.
 */

jest.setTimeout(1_800_000);

let s: ChaosStack;

useChaosStack('bad-input', {}, { started: (stack) => void (s = stack) });

const goodRows = () =>
  generateArithmeticProblems({ seed: 31, count: 40, split: 'train' }).map((p) => ({
    id: p.id,
    question: p.prompt,
    answer: p.answer,
  }));

/** The bad rows, each with the quarantine reason it must get (by line content, written as raw bytes). */
function messyDataset(): { bytes: Buffer; expected: { id: string; reasons: string[] }[]; good: number; first: string } {
  const good = goodRows();
  const lines: Buffer[] = [];
  const expected: { id: string; reasons: string[] }[] = [];
  const add = (b: string | Buffer, id?: string, reasons?: string[]) => {
    lines.push(typeof b === 'string' ? Buffer.from(b, 'utf8') : b);
    if (id && reasons) expected.push({ id, reasons });
  };
  good.slice(0, 20).forEach((r) => add(JSON.stringify(r)));
  add('{"id": "bad-json", "question": "Compute 1 + 1.", ', 'line-21', ['malformed_json']);
  add('[1, 2, 3]', 'line-22', ['not_an_object']);
  add('"just a string"', 'line-23', ['not_an_object']);
  add(JSON.stringify({ id: 'prompt-number', question: 12345, answer: '1' }), 'prompt-number', ['bad_prompt']);
  add(JSON.stringify({ id: 'prompt-null', question: null, answer: '1' }), 'prompt-null', ['bad_prompt']);
  add(JSON.stringify({ id: 'prompt-missing', answer: '1' }), 'prompt-missing', ['bad_prompt']);
  add(JSON.stringify({ id: 'prompt-blank', question: '   ', answer: '1' }), 'prompt-blank', ['bad_prompt']);
  add(JSON.stringify({ id: 'answer-object', question: 'Compute 2 + 2.', answer: { v: 4 } }), 'answer-object', [
    'bad_answer',
  ]);
  add(JSON.stringify({ id: 'answer-bool', question: 'Compute 2 + 3.', answer: true }), 'answer-bool', ['bad_answer']);
  add(JSON.stringify({ id: 'answer-missing', question: 'Compute 2 + 4.' }), 'answer-missing', ['bad_answer']);
  // a duplicate prompt id: the first occurrence is kept, the repeat quarantined
  add(JSON.stringify({ ...good[1]!, question: good[1]!.question + ' (again)' }), good[1]!.id, ['duplicate_id']);
  add(JSON.stringify({ id: 'huge', question: 'Compute 1 + 1. ' + 'x'.repeat(300_000), answer: '2' }), 'huge', [
    'prompt_too_long',
  ]);
  // invalid UTF-8 inside a prompt (a lone continuation byte and an overlong sequence)
  add(
    Buffer.concat([
      Buffer.from('{"id": "bad-utf8", "question": "Compute 3 + 3. '),
      Buffer.from([0x80, 0xc0, 0xaf, 0xff]),
      Buffer.from('", "answer": "6"}'),
    ]),
    'bad-utf8',
    ['invalid_utf8', 'bad_encoding', 'malformed_utf8'],
  );
  add('');
  add('   ');
  good.slice(20).forEach((r) => add(JSON.stringify(r) + '\r'));
  // the file starts with a UTF-8 byte order mark (as exported by many Windows tools): the first row is a good one
  return {
    bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), ...lines.flatMap((l) => [l, Buffer.from('\n')])]),
    expected,
    good: good.length,
    first: good[0]!.id,
  };
}

async function readFile(ref: Parameters<typeof readJsonl>[0]): Promise<unknown[]> {
  const rows: unknown[] = [];
  for await (const r of readJsonl(ref)) rows.push(r);
  return rows;
}

function spec(name: string, dataset: unknown, overrides: Record<string, unknown> = {}) {
  return chaosSpec(s, name, {
    dataset,
    fineTune: {
      epochs: 1,
      batchSize: 8,
      maxSteps: 4,
      checkpointEvery: 4,
      model: { dModel: 32, nLayer: 1, nHead: 2, maxLen: 256 },
    },
    evaluation: {
      benchmark: { type: 'builtin', task: 'arithmetic', count: 8, seed: 2 },
      k: 1,
      maxNewTokens: 32,
      baseline: false,
    },
    timeouts: { heartbeatSeconds: 30 },
    ...overrides,
  });
}

test('a JSONL dataset with every kind of bad row: each gets a quarantine entry, and every stage accounts for its rows', async () => {
  const file = path.join(s.tmp, 'messy.jsonl');
  const { bytes, expected, good, first } = messyDataset();
  writeFileSync(file, bytes);
  const fields = { id: 'id', prompt: 'question', answer: 'answer' };
  const workflowId = `bad-input-${randomUUID()}`;
  const summary = (await s.client.workflow.execute('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId,
    args: [spec('messy', { source: { type: 'jsonl', path: file, fields } })],
  })) as RunSummary;
  const c = summary.counts;
  const quarantine = new Map<string, RejectRow[]>();
  for await (const r of readJsonl<RejectRow>(summary.artifacts.quarantine!))
    quarantine.set(r.id, [...(quarantine.get(r.id) ?? []), r]);
  const kept: PromptRow[] = [];
  for await (const r of readJsonl<PromptRow>(summary.artifacts.prompts!)) kept.push(r);
  const keptIds = new Set(kept.map((r) => r.id));

  // each bad row is quarantined with its reason (and the kept prompts hold none of them)
  const missing: string[] = [];
  for (const e of expected) {
    const q = (quarantine.get(e.id) ?? []).some((r) => e.reasons.includes(r.reason));
    const wronglyKept = e.reasons[0] !== 'duplicate_id' && keptIds.has(e.id);
    if (!q || wronglyKept)
      missing.push(
        `${e.id} (want ${e.reasons[0]}${wronglyKept ? ', but it was KEPT' : ''}; got ${(quarantine.get(e.id) ?? []).map((r) => r.reason).join(',') || 'nothing'})`,
      );
  }
  const mangled = kept.filter((r) => r.prompt.includes('\uFFFD')).map((r) => r.id);
  if (!keptIds.has(first))
    missing.push(
      `${first}: the first row, after a UTF-8 byte order mark, was not kept (${(quarantine.get('line-1') ?? []).map((r) => r.reason).join(',') || 'gone'})`,
    );

  // accounting, stage by stage
  const gaps: string[] = [];
  const p = c.prepare!;
  if (p.in !== p.kept! + p.quarantined! + (p.seen ?? 0)) gaps.push(`prepare ${p.in} ≠ ${p.kept} + ${p.quarantined}`);
  if (p.kept !== keptIds.size || kept.length !== keptIds.size)
    gaps.push(`prepare kept ${p.kept} vs ${keptIds.size} distinct ids in prompts.jsonl`);
  const n = (spec('x', null).sampling as { n: number }).n;
  if (c.generate!.samples !== p.kept! * n)
    gaps.push(`generate ${c.generate!.samples} samples ≠ ${p.kept} prompts × ${n}`);
  if (c.verify!.in !== c.generate!.samples || c.verify!.in !== c.verify!.accepted! + c.verify!.rejected!)
    gaps.push(`verify ${JSON.stringify(c.verify)}`);
  if (c.filter!.in !== c.verify!.accepted || c.filter!.in !== c.filter!.kept! + c.filter!.rejected!)
    gaps.push(`filter ${JSON.stringify(c.filter)}`);
  const badRows = expected.length;
  // From the files: every non-blank input line is a kept prompt or a quarantine entry; then each later stage's files
  // hold every id the one before passed on, once.
  const inputLines = bytes
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim()).length;
  const quarantined = [...quarantine.values()].reduce((t, q) => t + q.length, 0);
  const account = await accountRun(summary.runDir, n);
  const lost = Math.max(0, inputLines - (kept.length + quarantined)) + missing.length + account.lost;
  const duplicated = Math.max(0, kept.length + quarantined - inputLines) + account.duplicated;
  if (account.lost || account.duplicated) gaps.push(`files: ${accountingProblems(account)}`);
  const ok = gaps.length === 0 && missing.length === 0 && mangled.length === 0 && lost === 0 && duplicated === 0;
  recordRow({
    fault: 'bad input: malformed JSONL, wrong types, duplicate ids, huge prompt, invalid UTF-8',
    runs: 1,
    completed: 1,
    lost,
    duplicated,
    redone: null,
    bound: null,
    unit: '-',
    ok,
    note: [
      `rows in ${p.in} = kept ${p.kept} + quarantined ${p.quarantined} (${good} good, ${badRows} bad); verify ${c.verify!.in} = ${c.verify!.accepted} + ${c.verify!.rejected}; filter ${c.filter!.in} = ${c.filter!.kept} + ${c.filter!.rejected}`,
      missing.length ? `NOT QUARANTINED: ${missing.join('; ')}` : '',
      mangled.length ? `KEPT WITH U+FFFD (invalid UTF-8 replaced silently): ${mangled.join(', ')}` : '',
      gaps.join('; '),
    ]
      .filter(Boolean)
      .join('; '),
  });
  expect(gaps).toEqual([]);
  expect(missing).toEqual([]);
  expect(mangled).toEqual([]);
  expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
  expect(p.kept).toBe(good);
});

test('a Parquet dataset with bad rows (null prompt and answer, a blank prompt, a duplicate id): each quarantined, every stage accounts for its rows', async () => {
  const file = path.join(s.tmp, 'messy.parquet');
  const good = goodRows().slice(0, 30);
  // Written by pyarrow (the reference writer, in the project's venv): typed columns, so the bad rows are nulls, an
  // empty string, a list where a scalar belongs (its own column) and a repeated id.
  const py = `
import json, sys, pyarrow as pa, pyarrow.parquet as pq
good = json.loads(sys.argv[2])
ids = [r["id"] for r in good] + ["null-q", "blank-q", good[3]["id"], "null-a"]
qs = [r["question"] for r in good] + [None, "   ", good[3]["question"] + " (again)", "Compute 5 + 5."]
ans = [str(r["answer"]) for r in good] + ["1", "1", "1", None]
pq.write_table(pa.table({"id": ids, "question": qs, "answer": ans}), sys.argv[1], row_group_size=7, compression="zstd")
`;
  execFileSync(pythonBin(), ['-c', py, file, JSON.stringify(good)]);
  const expected: [string, string][] = [
    ['null-q', 'bad_prompt'],
    ['blank-q', 'bad_prompt'],
    [good[3]!.id, 'duplicate_id'],
    ['null-a', 'bad_answer'],
  ];
  const summary = (await s.client.workflow.execute('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId: `bad-parquet-${randomUUID()}`,
    args: [
      spec('messy-parquet', {
        source: { type: 'parquet', path: file, fields: { id: 'id', prompt: 'question', answer: 'answer' } },
      }),
    ],
  })) as RunSummary;
  const c = summary.counts;
  const quarantine: RejectRow[] = [];
  for await (const r of readJsonl<RejectRow>(summary.artifacts.quarantine!)) quarantine.push(r);
  const got = quarantine.map((r) => [r.id, r.reason]);
  const p = c.prepare!;
  const gaps: string[] = [];
  if (p.in !== p.kept! + p.quarantined!) gaps.push(`prepare ${p.in} ≠ ${p.kept} + ${p.quarantined}`);
  if (c.verify!.in !== c.verify!.accepted! + c.verify!.rejected!) gaps.push(`verify ${JSON.stringify(c.verify)}`);
  if (c.filter!.in !== c.verify!.accepted || c.filter!.in !== c.filter!.kept! + c.filter!.rejected!)
    gaps.push(`filter ${JSON.stringify(c.filter)}`);
  const missing = expected
    .filter(([id, reason]) => !got.some(([i, r]) => i === id && r === reason))
    .map(([id, r]) => `${id} (want ${r})`);
  // From the files: the Parquet file's rows (as written above) against the kept prompts and quarantine entries, then
  // each stage's ids against the next one's.
  const rowsIn = good.length + 4;
  const keptRows = (await readFile(summary.artifacts.prompts!)).length;
  const account = await accountRun(summary.runDir, (spec('x', null).sampling as { n: number }).n);
  const lost = Math.max(0, rowsIn - (keptRows + quarantine.length)) + missing.length + account.lost;
  const duplicated = Math.max(0, keptRows + quarantine.length - rowsIn) + account.duplicated;
  if (account.lost || account.duplicated) gaps.push(`files: ${accountingProblems(account)}`);
  recordRow({
    fault: 'bad input: Parquet rows with nulls, an empty prompt, a duplicate id',
    runs: 1,
    completed: 1,
    lost,
    duplicated,
    redone: null,
    bound: null,
    unit: '-',
    ok: gaps.length === 0 && missing.length === 0 && p.kept === good.length && lost === 0 && duplicated === 0,
    note: [
      `rows in ${p.in} = kept ${p.kept} + quarantined ${p.quarantined}`,
      missing.length ? `NOT QUARANTINED: ${missing.join('; ')}` : '',
      gaps.join('; '),
    ]
      .filter(Boolean)
      .join('; '),
  });
  expect(gaps).toEqual([]);
  expect(missing).toEqual([]);
  expect(p).toMatchObject({ in: good.length + 4, kept: good.length, quarantined: 4 });
  expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
});

interface FailCase {
  name: string;
  fault: string;
  dataset?: () => unknown;
  overrides?: Record<string, unknown>;
  type: string;
  /** every one must match the error message */
  message: RegExp[];
}

const failCases: FailCase[] = [
  {
    name: 'empty',
    fault: 'bad input: empty dataset',
    dataset: () => {
      writeFileSync(path.join(s.tmp, 'empty.jsonl'), '\n\n');
      return { source: { type: 'jsonl', path: path.join(s.tmp, 'empty.jsonl') } };
    },
    type: 'EmptyDataset',
    message: [/empty/i],
  },
  {
    name: 'all-bad',
    fault: 'bad input: every row bad (wrong field names)',
    dataset: () => {
      writeFileSync(
        path.join(s.tmp, 'all-bad.jsonl'),
        goodRows()
          .map((r) => JSON.stringify(r))
          .join('\n') + '\n',
      );
      return { source: { type: 'jsonl', path: path.join(s.tmp, 'all-bad.jsonl') } }; // fields default to prompt/answer: "question" is not mapped
    },
    type: 'EmptyDataset',
    message: [/all 40 rows were quarantined/],
  },
  {
    name: 'missing-file',
    fault: 'bad input: dataset file missing',
    dataset: () => ({ source: { type: 'jsonl', path: path.join(s.tmp, 'no-such-file.jsonl') } }),
    type: 'DatasetNotFound',
    message: [/does not exist/],
  },
  {
    name: 'parquet-corrupt',
    fault: 'bad input: a corrupt Parquet file',
    dataset: () => {
      // the magic, a little binary and the magic again: no footer a reader can parse
      writeFileSync(
        path.join(s.tmp, 'corrupt.parquet'),
        Buffer.concat([
          Buffer.from('PAR1'),
          Buffer.from([0x15, 0x04, 0x15, 0x10, 0x0a, 0x00, 0xff, 0x0a]),
          Buffer.from('PAR1'),
        ]),
      );
      return { source: { type: 'parquet', path: path.join(s.tmp, 'corrupt.parquet') } };
    },
    type: 'InvalidDatasetFile',
    message: [/corrupt\.parquet/, /not a readable Parquet file/],
  },
  {
    name: 'parquet-as-jsonl',
    fault: 'bad input: Parquet bytes given as JSONL',
    dataset: () => {
      writeFileSync(
        path.join(s.tmp, 'data.parquet'),
        Buffer.concat([
          Buffer.from('PAR1'),
          Buffer.from([0x15, 0x04, 0x15, 0x10, 0x0a, 0x00, 0xff, 0x0a]),
          Buffer.from('PAR1'),
        ]),
      );
      return { source: { type: 'jsonl', path: path.join(s.tmp, 'data.parquet') } };
    },
    type: 'EmptyDataset',
    message: [/quarantined/, /data\.parquet is a Parquet file read as JSONL: set dataset\.source\.type to "parquet"/],
  },
  {
    name: 'spec',
    fault: 'bad input: invalid spec values',
    overrides: {
      sampling: { n: 0, temperature: 7, top_p: 0 },
      generation: { shardSize: 0, maxShardsInFlight: -1 },
      timeouts: { heartbeatSeconds: -5 },
      fineTune: { epochs: 0, batchSize: 2.5, model: { dModel: 0 } },
      evaluation: { benchmark: { type: 'builtin', task: 'arithmetic', count: 0 }, k: 0 },
      teacher: { baseURL: 'not a url', model: '' },
    },
    type: 'InvalidRunSpec',
    message: [
      'sampling.n',
      'sampling.temperature',
      'sampling.top_p',
      'generation.shardSize',
      'generation.maxShardsInFlight',
      'timeouts.heartbeatSeconds',
      'fineTune.epochs',
      'fineTune.batchSize',
      'evaluation.k',
      'teacher.baseURL',
      'teacher.model',
    ].map((f) => new RegExp(`- ${f.replace(/\./g, '\\.')}:`)),
  },
];

for (const fc of failCases) {
  test(`${fc.fault}: fails at once with a clear ${fc.type} error`, async () => {
    const dataset = fc.dataset ? fc.dataset() : { source: { type: 'builtin', task: 'arithmetic', count: 10, seed: 1 } };
    const started = Date.now();
    const err = await s.client.workflow
      .execute('distillationWorkflow', {
        taskQueue: 'distillery',
        workflowId: `bad-${fc.name}-${randomUUID()}`,
        args: [spec(fc.name, dataset, fc.overrides)],
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    const seconds = (Date.now() - started) / 1000;
    // compare error names, not classes: jest's module registry may hold another copy of @temporalio/client
    const name = (err as Error | null)?.name;
    // the application failure is the workflow's own (a bad spec) or the cause of a failed activity (prepare)
    let cause = (err as WorkflowFailedError | null)?.cause as
      { type?: string; message?: string; cause?: unknown } | undefined;
    while (cause && !cause.type && cause.cause) cause = cause.cause as typeof cause;
    const message = cause?.message ?? '';
    const ok =
      name === 'WorkflowFailedError' &&
      cause?.type === fc.type &&
      fc.message.every((re) => re.test(message)) &&
      seconds < 60;
    recordFailedRun(
      fc.fault,
      ok,
      `${cause?.type ?? name ?? 'no error'} in ${seconds.toFixed(1)} s: ${message.replace(/\s+/g, ' ').slice(0, 160)}`,
    );
    expect(name).toBe('WorkflowFailedError');
    expect(cause?.type).toBe(fc.type);
    for (const re of fc.message) expect(message).toMatch(re);
    expect(seconds).toBeLessThan(60);
  });
}
