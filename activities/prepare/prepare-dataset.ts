import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { ArtifactRef, PromptRow, RejectRow } from '../../schemas/artifact';
import type { DatasetSource, MixSource, RunSpec } from '../../schemas/run-spec';
import { layout } from '../artifacts/layout';
import { currentActivity } from '../activity-context';
import {
  AtomicJsonlWriter,
  ensureWritableDir,
  writeJsonAtomic,
  exists,
  readJsonlLines,
  runDirFor,
} from '../artifacts/store';
import { generateArithmeticProblems, posedArithmeticPrompt } from '../dataset/arithmetic-task';
import { hfDataFiles } from '../dataset/hf-directory';
import { planOf, sourcesFileOf, type SourceCounts, type SourcePlan, type SourcesFile } from '../dataset/mixture';
import { generateNumberWordsProblems } from '../dataset/number-words-task';
import { ParquetFileError, readParquetRows } from '../dataset/parquet-rows';
import { datasetVersion, promptHash, seenPromptHashes } from '../lineage/lineage';
import { checkSpecAgainstPolicy, confinePath } from '../security/worker-policy';

export interface PrepareDatasetInput {
  artifactRoot: string;
  runId: string;
  dataset?: RunSpec['dataset'];
  /** A mixture: every source read in turn, its ids prefixed with its name; prepare/sources.json holds each one's plan. */
  datasets?: MixSource[];
  mixing?: RunSpec['mixing'];
  /** The run's verifier.type: a reasoning source's default verifier. */
  verifierType?: RunSpec['verifier']['type'];
  shardSize: number;
  /** Incremental run: skip prompts that the lineage's earlier successful runs have distilled. */
  incremental?: { lineage: string };
  /** The whole run spec: checked against the worker's policy (keys, paths) before anything else, so a bad one fails now. */
  spec?: RunSpec;
}

export interface PrepareDatasetResult {
  /** The run's directory, resolved on the worker: every later stage writes under it. */
  runDir: string;
  rowsIn: number;
  kept: number;
  quarantined: number;
  prompts: ArtifactRef;
  quarantine: ArtifactRef;
  shardCount: number;
  /** Rows skipped because an earlier successful run of the lineage distilled the same prompt (incremental runs). */
  seen: number;
  /** {id, hash} per kept prompt (content hash, see activities/lineage). */
  promptHashes: ArtifactRef;
  /** sha256 over the kept prompts' sorted content hashes. */
  datasetVersion: string;
  /** Per source of a mixture: in = kept + quarantined. */
  bySource?: Record<string, SourceCounts>;
}

/** What prepare reads: one dataset, or each source of a mixture with its plan. */
interface Entry {
  dataset: { source: DatasetSource; limit?: number };
  plan?: SourcePlan;
}

function entriesOf(input: PrepareDatasetInput): Entry[] {
  if (input.datasets)
    return input.datasets.map((d) => ({
      dataset: { source: d.source, limit: d.limit },
      plan: planOf(d, input.verifierType ?? 'math'),
    }));
  if (!input.dataset) throw ApplicationFailure.nonRetryable('prepare needs dataset or datasets', 'InvalidRunSpec');
  return [{ dataset: input.dataset }];
}

/**
 * Reads the dataset source, maps its fields to prompts, quarantines rows that cannot be used (with the reason), and
 * cuts the prompts into shard files that generation fans out over. Accounting: rowsIn = kept + quarantined + seen
 * (seen: prompts an earlier successful run of the lineage already distilled; only for incremental runs).
 */
export async function prepareDataset(input: PrepareDatasetInput): Promise<PrepareDatasetResult> {
  if (input.spec) await checkSpecAgainstPolicy(input.spec);
  await confinePath({ field: 'artifactRoot', path: input.artifactRoot, access: 'write' });
  if (input.dataset && input.dataset.source.type !== 'builtin')
    await confinePath({ field: 'dataset.source.path', path: input.dataset.source.path, access: 'read' });
  for (const d of input.datasets ?? [])
    if (d.source.type !== 'builtin')
      await confinePath({ field: `datasets.${d.name}.source.path`, path: d.source.path, access: 'read' });
  const runDir = runDirFor(input.artifactRoot, input.runId);
  const dir = path.join(runDir, 'prepare');
  // A read-only or permission-denied root fails here, non-retryably and naming the path, before anything is written.
  await ensureWritableDir(input.artifactRoot);
  const ctx = currentActivity();
  const promptsOut = new AtomicJsonlWriter(path.join(dir, 'prompts.jsonl'));
  const quarantineOut = new AtomicJsonlWriter(path.join(dir, 'quarantine.jsonl'));
  let shardCount = 0;
  let shard: AtomicJsonlWriter | undefined;
  let rowsIn = 0;
  const seen = new Set<string>();
  const hashesOut = new AtomicJsonlWriter(path.join(dir, 'prompt-hashes.jsonl'));
  const hashes: string[] = [];
  const seenBefore = input.incremental
    ? await seenPromptHashes(input.artifactRoot, input.incremental.lineage, input.runId)
    : new Set<string>();
  let seenCount = 0;

  /** Files this attempt renamed into place: removed again if the attempt fails. */
  const finished: string[] = [];
  const finish = async (w: AtomicJsonlWriter) => {
    const ref = await w.finish();
    finished.push(w.target);
    return ref;
  };
  const keep = async (row: PromptRow) => {
    await promptsOut.write(row);
    if (!shard || shard.count >= input.shardSize) {
      if (shard) await finish(shard);
      shard = new AtomicJsonlWriter(layout.shardPrompts(runDir, shardCount++));
    }
    await shard.write(row);
  };
  const quarantine = (r: RejectRow) => quarantineOut.write(r);

  const entries = entriesOf(input);
  const bySource: Record<string, SourceCounts> = {};
  const readAll = async () => {
    for (const { dataset, plan } of entries) {
      const counts: SourceCounts = { in: 0, kept: 0, quarantined: 0 };
      if (plan) bySource[plan.name] = counts;
      const prefix = plan ? `${plan.name}/` : '';
      const tag = plan ? { source: plan.name } : {};
      const quarantineHere = async (r: RejectRow) => {
        counts.quarantined += 1;
        await quarantine({ ...r, id: prefix + r.id, ...tag });
      };
      const limitName = plan ? `datasets.${plan.name}.limit` : 'dataset.limit';
      for await (const candidate of sourceRows(dataset)) {
        rowsIn += 1;
        counts.in += 1;
        if (rowsIn % 1000 === 0) ctx?.heartbeat({ rowsIn });
        if (dataset.limit !== undefined && counts.kept >= dataset.limit) {
          await quarantineHere({
            id: candidate.id ?? candidate.at.replace(' ', '-'),
            stage: 'prepare',
            reason: 'over_limit',
            detail: `${limitName} is ${dataset.limit}`,
          });
          continue;
        }
        if ('problem' in candidate) {
          await quarantineHere({
            id: candidate.id ?? candidate.at.replace(' ', '-'),
            stage: 'prepare',
            reason: candidate.problem,
            detail: candidate.detail,
            row: candidate.raw,
          });
          continue;
        }
        if (plan) {
          if (plan.responses === 'existing' && !candidate.row.response) {
            await quarantineHere({
              id: candidate.row.id,
              stage: 'prepare',
              reason: 'bad_response',
              detail: `${candidate.at}: source ${plan.name} reuses existing responses, but this row has none`,
              row: candidate.row,
            });
            continue;
          }
          const { response, ...rest } = candidate.row;
          candidate.row = {
            ...rest,
            id: prefix + candidate.row.id,
            source: plan.name,
            task: plan.verifier,
            ...(plan.responses === 'existing' ? { response } : {}),
          };
        }
        if (seen.has(candidate.row.id)) {
          counts.quarantined += 1;
          await quarantine({
            ...tag,
            id: candidate.row.id,
            stage: 'prepare',
            reason: 'duplicate_id',
            detail: `${candidate.at} repeats an earlier id`,
            row: candidate.row,
          });
          continue;
        }
        seen.add(candidate.row.id);
        const hash = promptHash(candidate.row.prompt);
        if (seenBefore.has(hash)) {
          seenCount += 1;
          counts.quarantined += 1;
          continue;
        }
        hashes.push(hash);
        counts.kept += 1;
        await hashesOut.write({ id: candidate.row.id, hash });
        await keep(candidate.row);
      }
    }
    if (shard) await finish(shard);
    return {
      prompts: await finish(promptsOut),
      quarantineRef: await finish(quarantineOut),
      promptHashes: await finish(hashesOut),
    };
  };
  let written: Awaited<ReturnType<typeof readAll>>;
  try {
    written = await readAll();
  } catch (err) {
    // A failed attempt (a full disk, an unreadable source) leaves nothing behind: no temp file holding the space a
    // retry needs, and no file of a dataset that was never completely prepared (never read as complete).
    await Promise.all([promptsOut.abort(), quarantineOut.abort(), hashesOut.abort(), shard?.abort()]);
    await Promise.all(finished.map((f) => fs.rm(f, { force: true }).catch(() => undefined)));
    throw err;
  }
  const { prompts, quarantineRef, promptHashes } = written;
  if (input.datasets) {
    const file: SourcesFile = {
      sources: entries.map((e) => ({ ...e.plan!, prepare: bySource[e.plan!.name]! })),
      mixing: {
        seed: input.mixing?.seed ?? 0,
        ...(input.mixing?.total !== undefined ? { total: input.mixing.total } : {}),
      },
    };
    await writeJsonAtomic(sourcesFileOf(runDir), file);
    const empty = file.sources
      .filter((s) => s.prepare.kept === 0 && s.prepare.in > 0 && seenCount === 0)
      .map((s) => `${s.name} (all ${s.prepare.in} rows quarantined)`);
    const none = file.sources.filter((s) => s.prepare.in === 0).map((s) => `${s.name} (empty)`);
    if (empty.length || none.length) {
      throw ApplicationFailure.nonRetryable(
        `No usable rows in source ${[...none, ...empty].join(', ')}: a mixture needs every source. See ${quarantineRef.uri}`,
        'EmptyDataset',
      );
    }
  }
  const version = datasetVersion(hashes);
  // An incremental run with nothing new is not an error: the workflow ends it early and says so.
  const sourceCounts = input.datasets ? { bySource } : {};
  if (prompts.count === 0 && seenCount > 0) {
    return {
      ...sourceCounts,
      runDir,
      rowsIn,
      kept: 0,
      quarantined: quarantineRef.count,
      prompts,
      quarantine: quarantineRef,
      shardCount: 0,
      seen: seenCount,
      promptHashes,
      datasetVersion: version,
    };
  }
  if (prompts.count === 0) {
    const hint = input.dataset ? await formatHint(input.dataset) : '';
    throw ApplicationFailure.nonRetryable(
      rowsIn === 0
        ? `The dataset is empty: no rows to distil. Check dataset.source.${hint}`
        : `No usable rows: all ${rowsIn} rows were quarantined (see ${quarantineRef.uri}). Check dataset.source.fields.${hint}`,
      'EmptyDataset',
    );
  }
  return {
    runDir,
    rowsIn,
    kept: prompts.count,
    quarantined: quarantineRef.count,
    prompts,
    quarantine: quarantineRef,
    shardCount,
    seen: seenCount,
    promptHashes,
    datasetVersion: version,
    ...sourceCounts,
  };
}

/** A source row, good or not; `at` says where it is ("line 3" of a JSONL file, "row 3" of a Parquet file). */
type Candidate =
  | { at: string; id?: string; row: PromptRow }
  | { at: string; id?: string; problem: string; detail: string; raw?: unknown };

const MAX_PROMPT_CHARS = 200_000;
const TASK_TYPES = new Set(['math', 'choice', 'exact', 'regex', 'code', 'judge']);
type SourceFields = Extract<DatasetSource, { fields: unknown }>['fields'];

async function* sourceRows(dataset: { source: DatasetSource }): AsyncGenerator<Candidate> {
  const source = dataset.source;
  if (source.type === 'builtin' && source.task === 'number-words') {
    const problems = generateNumberWordsProblems({
      seed: source.seed,
      count: source.count,
      split: 'train',
      maxValue: source.maxValue,
    });
    for (const [i, p] of problems.entries())
      yield { at: `line ${i + 1}`, id: p.id, row: { id: p.id, prompt: p.prompt, answer: p.answer } };
    return;
  }
  if (source.type === 'builtin') {
    const problems = generateArithmeticProblems({
      seed: source.seed,
      count: source.count,
      split: 'train',
      digits: source.digits,
      ops: source.ops,
    });
    let line = 0;
    for (const p of problems) {
      line += 1;
      yield {
        at: `line ${line}`,
        id: p.id,
        row: { id: p.id, prompt: posedArithmeticPrompt(p), answer: p.answer, meta: { difficulty: p.difficulty } },
      };
    }
    return;
  }
  const { fields } = source;
  if (!(await exists(source.path))) {
    throw ApplicationFailure.nonRetryable(
      `dataset.source.path ${source.path} does not exist on the worker (${process.cwd()})`,
      'DatasetNotFound',
    );
  }
  if (source.type === 'hf') {
    const files = await hfDataFiles(source.path, source.split);
    if (!files.length)
      throw ApplicationFailure.nonRetryable(
        `dataset.source.path ${source.path}: no .jsonl or .parquet file of split "${source.split}" in the directory`,
        'DatasetNotFound',
      );
    for (const file of files) {
      const rel = path.relative(source.path, file);
      yield* fileRows({ path: file, type: file.endsWith('.parquet') ? 'parquet' : 'jsonl', fields }, rel);
    }
    return;
  }
  yield* fileRows(source, '');
}

async function* fileRows(
  source: { type: 'jsonl' | 'parquet'; path: string; fields: SourceFields },
  label: string,
): AsyncGenerator<Candidate> {
  const fields = source.fields;
  const where = (at: string) => (label ? `${label} ${at}` : at);
  if (source.type === 'parquet') {
    try {
      for await (const { row, value } of readParquetRows(source.path))
        yield candidateOf(where(`row ${row}`), value, fields);
    } catch (err) {
      if (err instanceof ParquetFileError)
        throw ApplicationFailure.nonRetryable(`dataset.source.path: ${err.message}`, 'InvalidDatasetFile');
      throw err;
    }
    return;
  }
  for await (const { line, text, invalidUtf8 } of readJsonlLines(source.path)) {
    const at = where(`line ${line}`);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      if (invalidUtf8) yield { at, problem: 'invalid_utf8', detail: invalidUtf8, raw: text.slice(0, 500) };
      else yield { at, problem: 'malformed_json', detail: `${at}: ${(err as Error).message}`, raw: text.slice(0, 500) };
      continue;
    }
    if (invalidUtf8) {
      // Bytes that are not UTF-8 would reach the teacher as U+FFFD: the row is quarantined, under its own id if it has one.
      const idValue =
        raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>)[fields.id] : undefined;
      const id = typeof idValue === 'string' || typeof idValue === 'number' ? String(idValue) : undefined;
      yield { at, id, problem: 'invalid_utf8', detail: invalidUtf8, raw: text.slice(0, 500) };
      continue;
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      yield { at, problem: 'not_an_object', detail: `${at} is not a JSON object`, raw };
      continue;
    }
    yield candidateOf(at, raw as Record<string, unknown>, fields);
  }
}

/** One source row (a JSONL line's object or a Parquet row) checked and mapped through dataset.source.fields. */
function candidateOf(at: string, obj: Record<string, unknown>, fields: SourceFields): Candidate {
  const raw = obj;
  const idValue = obj[fields.id];
  const id = typeof idValue === 'string' || typeof idValue === 'number' ? String(idValue) : at.replace(' ', '-');
  const prompt = obj[fields.prompt];
  const answer = obj[fields.answer];
  if (typeof prompt !== 'string' || !prompt.trim()) {
    return {
      at,
      id,
      problem: 'bad_prompt',
      detail: `field "${fields.prompt}" must be a non-empty string, got ${describe(prompt)}`,
      raw,
    };
  }
  if (prompt.length > MAX_PROMPT_CHARS) {
    return {
      at,
      id,
      problem: 'prompt_too_long',
      detail: `${prompt.length} chars > ${MAX_PROMPT_CHARS}`,
      raw: { [fields.id]: idValue },
    };
  }
  const task = fields.task ? obj[fields.task] : undefined;
  const response = fields.response ? obj[fields.response] : undefined;
  const tests = fields.tests ? obj[fields.tests] : undefined;
  // Code tasks may carry their tests as the answer (an object): it is kept as JSON text.
  const codeAnswer = task === 'code' && answer !== null && typeof answer === 'object';
  if (typeof answer !== 'string' && typeof answer !== 'number' && !codeAnswer) {
    return {
      at,
      id,
      problem: 'bad_answer',
      detail: `field "${fields.answer}" must be a string or number, got ${describe(answer)}`,
      raw,
    };
  }
  if (task !== undefined && task !== null && (typeof task !== 'string' || !TASK_TYPES.has(task))) {
    return {
      at,
      id,
      problem: 'bad_task',
      detail: `field "${fields.task}" must be one of ${[...TASK_TYPES].join(', ')}, got ${JSON.stringify(task)}`,
      raw,
    };
  }
  return {
    at,
    id,
    row: {
      id,
      prompt,
      answer: codeAnswer ? JSON.stringify(answer) : String(answer),
      ...(typeof task === 'string' ? { task } : {}),
      ...(tests !== undefined && tests !== null ? { tests } : {}),
      ...(typeof response === 'string' && response.trim() ? { response } : {}),
    },
  };
}

/** The dataset formats prepare reads. */
export const SUPPORTED_DATASET_FORMATS =
  'JSONL (dataset.source.type: jsonl, one JSON object per line, UTF-8), Parquet (type: parquet) or the builtin task (type: builtin)';

/**
 * When every row of a file source was quarantined: a hint if the file is in another format than its type says
 * (Parquet by its PAR1 magic; gzip), naming the file and what to do.
 */
async function formatHint(dataset: NonNullable<RunSpec['dataset']>): Promise<string> {
  if (dataset.source.type !== 'jsonl') return '';
  const file = dataset.source.path;
  let head = Buffer.alloc(0);
  try {
    const h = await fs.open(file, 'r');
    try {
      const { bytesRead, buffer } = await h.read(Buffer.alloc(4), 0, 4, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await h.close();
    }
  } catch {
    return '';
  }
  if (head.toString('latin1') === 'PAR1')
    return ` ${file} is a Parquet file read as JSONL: set dataset.source.type to "parquet".`;
  if (head[0] === 0x1f && head[1] === 0x8b)
    return ` ${file} is gzip-compressed, which prepare does not read: the supported formats are ${SUPPORTED_DATASET_FORMATS}. Decompress it first.`;
  return '';
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}
