import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { layout } from '../../activities/artifacts/layout';
import { readJsonl, runDirFor } from '../../activities/artifacts/store';
import { prepareDataset } from '../../activities/prepare/prepare-dataset';
import { projectRoot } from '../../infra/paths';
import { DatasetSchema, SamplingSchema, TeacherSchema } from '../../schemas/run-spec';
import type { PromptRow, SampleRow } from '../../schemas/artifact';
import type { GenerationInput } from '../../workflows/generation';
import type { RunSummary } from '../../workflows/distillation';
import { pauseSignal, resumeSignal, emptyGenerationTally } from '../../workflows/messages';
import {
  accountingProblems,
  accountRun,
  activityAttempts,
  chaosSpec,
  failureMessage,
  listDir,
  progressOf,
  sleep,
  useChaosStack,
  waitFor,
  type ChaosStack,
} from './harness';
import { recordFailedRun, recordRow, recordSkipped } from './table';
import { requires, underCi } from '../helpers/prerequisites';

/**
 * Storage faults: a full or read-only artifact root fails with a clear error and leaves no corrupt artifact; a full
 * disk mid-run recovers once space is freed, with no sample lost or duplicated; a half-written file (a torn shard,
 * an artifact truncated after it was written, a writer killed mid-file) is never read as complete.
 * The full and read-only roots are size-limited tmpfs mounts: they need root (or passwordless sudo); without it
 * those scenarios are skipped (a SKIP row in the table, a skipped test), and under CI=true they fail.
 */

jest.setTimeout(1_800_000);

let s: ChaosStack;

useChaosStack(
  'storage',
  {},
  {
    started: (stack) => void (s = stack),
    closing: () => {
      for (const m of mounts.splice(0)) unmount(m);
    },
  },
);

const mounts: string[] = [];

function sudo(args: string[]): void {
  if (process.getuid?.() === 0) execFileSync(args[0]!, args.slice(1), { stdio: 'pipe' });
  else execFileSync('sudo', ['-n', ...args], { stdio: 'pipe' });
}

/** A tmpfs of `sizeKiB` at dir (ro: read-only), or null when this machine does not let us mount. */
function tmpfs(dir: string, sizeKiB: number, ro = false): string | null {
  mkdirSync(dir, { recursive: true });
  try {
    sudo(['mount', '-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0777${ro ? ',ro' : ''}`, 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  } catch {
    return null;
  }
}

function unmount(dir: string): void {
  try {
    sudo(['umount', '-l', dir]);
  } catch {
    /* already gone */
  }
}

/** Whether this machine lets us mount a tmpfs (probed once, at load): null when it does. */
function tmpfsProblem(): string | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tmpfs-probe-'));
  try {
    sudo(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    sudo(['umount', dir]);
    return null;
  } catch (e) {
    return `cannot mount a tmpfs here (needs root or sudo -n): ${(e as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const TMPFS_SCENARIOS = [
  'storage: read-only artifact root',
  'storage: artifact root full (ENOSPC in prepare)',
  'storage: disk full mid-generation, then freed',
];
const withTmpfs = requires('a tmpfs mount', tmpfsProblem());
if (!withTmpfs.present && !underCi())
  for (const f of TMPFS_SCENARIOS) recordSkipped(f, 'cannot mount a tmpfs here (needs root or sudo -n)');

/** Fills the file system of dir: returns the ballast file (delete it to free the space). */
function fill(dir: string): string {
  const file = path.join(dir, `ballast-${randomUUID()}`);
  const fd = openSync(file, 'w');
  try {
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
      const buf = Buffer.alloc(size);
      for (;;) {
        try {
          writeSync(fd, buf);
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

function smallSpec(name: string, artifactRoot: string, overrides: Record<string, unknown> = {}) {
  return chaosSpec(s, name, {
    dataset: { source: { type: 'builtin', task: 'arithmetic', count: 120, seed: 41 } },
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
    artifactRoot,
    ...overrides,
  });
}

/** Waits until some pending activity (of the run or its generation child) failed with a message matching re. */
async function pendingFailure(
  h: WorkflowHandle,
  re: RegExp,
  timeoutMs = 120_000,
): Promise<{ type: string; attempt: number; message: string }> {
  return waitFor(
    `a pending activity failing with ${re}`,
    async () => {
      for (const id of [h.workflowId, `${h.workflowId}-generate`]) {
        const d = await s.client.workflow
          .getHandle(id)
          .describe()
          .catch(() => null);
        for (const a of d?.raw.pendingActivities ?? []) {
          const message = failureMessage(a.lastFailure);
          if (re.test(message)) return { type: a.activityType?.name ?? '?', attempt: a.attempt ?? 0, message };
        }
      }
      return null;
    },
    timeoutMs,
    250,
  );
}

/**
 * The first failure of a stage: a pending activity whose last attempt failed with a message matching re (a
 * retryable failure), or, when the failure was non-retryable, the workflow's own failure (the activity that failed,
 * its error type and message). `final` tells which.
 */
async function stageFailure(
  h: WorkflowHandle,
  re: RegExp,
  timeoutMs = 120_000,
): Promise<{ type: string; attempt: number; message: string; errorType: string; final: boolean }> {
  return waitFor(
    `an activity failing with ${re}`,
    async () => {
      for (const id of [h.workflowId, `${h.workflowId}-generate`]) {
        const d = await s.client.workflow
          .getHandle(id)
          .describe()
          .catch(() => null);
        for (const a of d?.raw.pendingActivities ?? []) {
          const message = failureMessage(a.lastFailure);
          if (re.test(message))
            return {
              type: a.activityType?.name ?? '?',
              attempt: a.attempt ?? 0,
              message,
              errorType: innermostType(a.lastFailure),
              final: false,
            };
        }
      }
      const d = await h.describe().catch(() => null);
      if (d && d.status.name !== 'RUNNING') {
        const history = await h.fetchHistory();
        const failure = history.events?.find((e) => e.workflowExecutionFailedEventAttributes)
          ?.workflowExecutionFailedEventAttributes?.failure;
        let activity = '?';
        for (let f = failure; f; f = f.cause)
          if (f.activityFailureInfo) activity = f.activityFailureInfo.activityType?.name ?? '?';
        const message = failureMessage(failure);
        if (re.test(message))
          return { type: activity, attempt: 0, message, errorType: innermostType(failure), final: true };
        throw new Error(`the run ended ${d.status.name} without a failure matching ${re}: ${message}`);
      }
      return null;
    },
    timeoutMs,
    250,
  );
}

function innermostType(f: Parameters<typeof failureMessage>[0]): string {
  let type = '';
  for (; f; f = f.cause) if (f.applicationFailureInfo?.type) type = f.applicationFailureInfo.type;
  return type;
}

/** Every file under dir, relative. */
function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const f of listDir(path.join(dir, rel))) {
    const r = path.join(rel, f);
    let isDir = false;
    try {
      isDir = statSync(path.join(dir, r)).isDirectory();
    } catch {
      continue;
    }
    if (isDir) out.push(...walk(dir, r));
    else out.push(r);
  }
  return out;
}

/** JSONL artifacts that do not parse to the end (a corrupt artifact), among the final (non-temp, non-partial) files. */
async function corruptArtifacts(runDir: string): Promise<string[]> {
  const bad: string[] = [];
  for (const f of walk(runDir)) {
    const base = path.basename(f);
    if (!f.endsWith('.jsonl') || base.startsWith('.')) continue;
    try {
      for await (const _ of readJsonl(path.join(runDir, f))) void _;
      const text = readFileSync(path.join(runDir, f), 'utf8');
      if (text.length && !text.endsWith('\n')) bad.push(`${f} (no final newline)`);
    } catch (e) {
      bad.push(`${f}: ${(e as Error).message}`);
    }
  }
  return bad;
}

const tempFiles = (runDir: string) => walk(runDir).filter((f) => /(^|\/)\.[^/]+\.tmp$/.test(f) || /\.tmp-/.test(f));

async function expectedSampleIds(runDir: string, n: number): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const p of readJsonl<PromptRow>(path.join(runDir, 'prepare', 'prompts.jsonl')))
    for (let i = 0; i < n; i++) ids.add(`${p.id}#${i}`);
  return ids;
}

async function sampleCheck(summary: RunSummary, n: number): Promise<{ lost: number; duplicated: number }> {
  const want = await expectedSampleIds(summary.runDir, n);
  const seen = new Map<string, number>();
  for await (const r of readJsonl<SampleRow>(summary.artifacts.samples!)) {
    const key = `${r.promptId}#${r.sampleIndex}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  let lost = 0;
  for (const k of want) if (!seen.has(k)) lost += 1;
  let duplicated = 0;
  for (const [k, c] of seen) duplicated += c - 1 + (want.has(k) ? 0 : 1);
  return { lost, duplicated };
}

withTmpfs.test('read-only artifact root: prepare fails with a clear error and nothing is written', async () => {
  const root = tmpfs(path.join(s.tmp, 'ro-root'), 1024, true);
  if (!root) throw new Error('the tmpfs mount failed although the probe mounted one');
  const workflowId = `ro-${randomUUID()}`;
  const started = Date.now();
  const h = await s.client.workflow.start('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId,
    args: [smallSpec('ro', root)],
  });
  // A read-only root will not heal by retrying: the run must fail at once (non-retryable), not after 10 attempts.
  const f = await stageFailure(h, /./);
  const seconds = (Date.now() - started) / 1000;
  if (!f.final) await h.terminate('chaos suite: enough seen');
  const files = walk(root);
  // the error must say what is wrong: a read-only root, not "no such file", and name the path
  const clear = /EROFS|read-only|not writable|EACCES|permission/i.test(f.message) && f.message.includes(root);
  const ok = files.length === 0 && clear && f.final;
  recordFailedRun(
    'storage: read-only artifact root',
    ok,
    `${f.type} ${f.final ? `failed the run in ${seconds.toFixed(1)} s` : `attempt ${f.attempt}, RETRIED (a read-only root does not heal)`}: ${f.errorType ? `[${f.errorType}] ` : ''}${f.message.replace(/^.*?\] /, '').slice(0, 160)}${clear ? '' : ' (MISLEADING: the root is read-only)'}`,
  );
  expect(f.message).toMatch(/EROFS|read-only|not writable|EACCES|permission/i);
  expect(f.message).toContain(root);
  expect(f.final).toBe(true);
  expect(files).toEqual([]);
});

withTmpfs.test('artifact root full from the start: a clear ENOSPC error and no corrupt artifact', async () => {
  const root = tmpfs(path.join(s.tmp, 'tiny-root'), 24);
  if (!root) throw new Error('the tmpfs mount failed although the probe mounted one');
  const workflowId = `full-${randomUUID()}`;
  const h = await s.client.workflow.start('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId,
    args: [
      smallSpec('full', root, { dataset: { source: { type: 'builtin', task: 'arithmetic', count: 2000, seed: 41 } } }),
    ],
  });
  const f = await pendingFailure(h, /ENOSPC|no space/i);
  // a second failed attempt, to see whether failed attempts leave their temp files behind
  await pendingFailure(h, /ENOSPC|no space/i).then(() =>
    waitFor('attempt 3', async () => ((await h.describe()).raw.pendingActivities?.[0]?.attempt ?? 0) >= 3, 60_000, 250),
  );
  await h.terminate('chaos suite: enough seen');
  const runDir = runDirFor(root, workflowId);
  const corrupt = await corruptArtifacts(runDir);
  const temps = tempFiles(runDir);
  const complete = existsSync(path.join(runDir, 'prepare', 'prompts.jsonl'));
  const ok = corrupt.length === 0 && !complete && temps.length === 0;
  recordFailedRun(
    'storage: artifact root full (ENOSPC in prepare)',
    ok,
    [
      `${f.type}: ${f.message.slice(0, 120)}`,
      corrupt.length ? `CORRUPT: ${corrupt.join(', ')}` : 'no corrupt artifact',
      temps.length
        ? `${temps.length} TEMP FILES LEFT by failed attempts (${temps.slice(0, 3).join(', ')}…): they hold the space a retry needs`
        : '',
    ]
      .filter(Boolean)
      .join('; '),
  );
  expect(f.message).toMatch(/ENOSPC|no space/i);
  expect(corrupt).toEqual([]);
  expect(complete).toBe(false);
  expect(temps).toEqual([]);
});

withTmpfs.test(
  'the disk fills up mid-generation and is freed again: the run completes, no sample lost or duplicated',
  async () => {
    const root = tmpfs(path.join(s.tmp, 'fills-root'), 64 * 1024);
    if (!root) throw new Error('the tmpfs mount failed although the probe mounted one');
    const workflowId = `fills-${randomUUID()}`;
    const spec = smallSpec('fills', root, {
      dataset: { source: { type: 'builtin', task: 'arithmetic', count: 240, seed: 41 } },
    });
    const requestsBefore = s.teacher.stats().requests;
    const h = await s.client.workflow.start('distillationWorkflow', {
      taskQueue: 'distillery',
      workflowId,
      args: [spec],
    });
    await waitFor('generation under way', async () => ((await progressOf(h))?.generation?.shardsDone ?? 0) >= 2);
    const ballast = fill(root);
    const f = await pendingFailure(h, /ENOSPC|no space/i);
    const runDir = runDirFor(root, workflowId);
    const corruptWhileFull = await corruptArtifacts(runDir);
    await sleep(2000);
    rmSync(ballast);
    const summary = (await h.result()) as RunSummary;
    const c = await sampleCheck(summary, (spec.sampling as { n: number }).n);
    const account = await accountRun(summary.runDir, (spec.sampling as { n: number }).n);
    // teacher requests beyond one per prompt, counted at the teacher; each failed shard attempt may lose the answers of
    // its request lanes in flight (asked again by the retry), nothing more
    const redone = s.teacher.stats().requests - requestsBefore - (summary.counts.prepare?.kept ?? 0);
    const failedAttempts = ((await activityAttempts(s.client, workflowId)).generateShard ?? []).reduce(
      (t, a) => t + a - 1,
      0,
    );
    const bound = failedAttempts * (spec.teacher as { concurrency: number }).concurrency;
    const corrupt = await corruptArtifacts(runDir);
    const temps = tempFiles(runDir);
    const ok =
      c.lost === 0 &&
      c.duplicated === 0 &&
      account.lost === 0 &&
      account.duplicated === 0 &&
      corruptWhileFull.length === 0 &&
      corrupt.length === 0 &&
      redone <= bound;
    recordRow({
      fault: 'storage: disk full mid-generation, then freed',
      runs: 1,
      completed: 1,
      lost: c.lost + account.lost,
      duplicated: c.duplicated + account.duplicated,
      redone,
      bound,
      unit: 'teacher requests',
      ok,
      note: [
        `${f.type} attempt ${f.attempt}: ${f.message.slice(0, 100)}`,
        `${failedAttempts} failed shard attempts`,
        corruptWhileFull.length ? `CORRUPT WHILE FULL: ${corruptWhileFull.join(', ')}` : '',
        corrupt.length ? `CORRUPT: ${corrupt.join(', ')}` : '',
        temps.length ? `${temps.length} temp files left` : '',
        accountingProblems(account),
      ]
        .filter(Boolean)
        .join('; '),
    });
    expect(c).toEqual({ lost: 0, duplicated: 0 });
    expect(accountingProblems(account)).toBe('');
    expect(redone).toBeLessThanOrEqual(bound);
    expect(corruptWhileFull).toEqual([]);
    expect(corrupt).toEqual([]);
  },
);

test('a torn shard (a killed writer’s half line) is never read as complete: the retry drops it and asks again', async () => {
  const artifactRoot = path.join(s.tmp, 'artifacts');
  const runId = `torn-${randomUUID()}`;
  const prepared = await prepareDataset({
    artifactRoot,
    runId,
    dataset: DatasetSchema.parse({ source: { type: 'builtin', task: 'arithmetic', count: 20, seed: 42 } }),
    shardSize: 10,
  });
  const n = 2;
  const sampling = SamplingSchema.parse({ n, temperature: 1.0, max_tokens: 200, seed: 3 });
  const teacher = TeacherSchema.parse({
    baseURL: s.teacher.url,
    model: 'procedural-arithmetic-teacher',
    concurrency: 1,
  });
  const gen = (shardCount: number): GenerationInput => ({
    runDir: prepared.runDir,
    parentWorkflowId: '',
    shardCount,
    teacher,
    sampling,
    maxShardsInFlight: 1,
    cpuQueue: 'distillery-cpu',
    heartbeatSeconds: 30,
    stageHours: 1,
    nextShard: 0,
    tally: emptyGenerationTally(shardCount),
    maxHistoryEvents: 8000,
  });
  // Shard 0 made properly, then turned into what a writer killed mid-line leaves: 3 whole prompts and half a line.
  await s.client.workflow.execute('generationWorkflow', {
    taskQueue: 'distillery',
    workflowId: `${runId}-a`,
    args: [gen(1)],
  });
  const final = layout.shardSamples(prepared.runDir, 0);
  const lines = readFileSync(final, 'utf8').split('\n').filter(Boolean);
  const torn = lines.slice(0, 3 * n).join('\n') + '\n' + lines[3 * n]!.slice(0, 40);
  rmSync(final);
  writeFileSync(`${final}.partial`, torn);
  const before = s.teacher.stats().requests;
  const tally = (await s.client.workflow.execute('generationWorkflow', {
    taskQueue: 'distillery',
    workflowId: `${runId}-b`,
    args: [gen(prepared.shardCount)],
  })) as { resumedSamples: number };
  const requests = s.teacher.stats().requests - before;
  const rows: SampleRow[] = [];
  for await (const r of readJsonl<SampleRow>(final)) rows.push(r);
  const ids = rows.map((r) => r.id);
  const lost = 10 * n - new Set(ids).size;
  const duplicated = ids.length - new Set(ids).size;
  const ok = lost === 0 && duplicated === 0 && tally.resumedSamples === 3 * n && requests === 10 + 7;
  recordRow({
    fault: 'storage: torn .partial shard (half-written line)',
    runs: 1,
    completed: 1,
    lost,
    duplicated,
    redone: requests - 17,
    bound: 0,
    unit: 'teacher requests',
    ok,
    note: `${tally.resumedSamples} samples resumed, the torn prompt asked again; ${requests} requests for 7 + 10 prompts`,
  });
  expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
  expect(tally.resumedSamples).toBe(3 * n);
  expect(requests).toBe(17);
});

test('an artifact truncated after it was written is refused by the next stage with a clear error', async () => {
  const workflowId = `trunc-${randomUUID()}`;
  const root = path.join(s.tmp, 'artifacts');
  const h = await s.client.workflow.start('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId,
    args: [smallSpec('trunc', root)],
  });
  // pause once every shard has started (window of 2): generation finishes and merges, verify waits for the resume
  await waitFor('every shard started', async () => {
    const g = (await progressOf(h))?.generation;
    return !!g && g.shardsDone >= g.shardCount - 2;
  });
  await h.signal(pauseSignal);
  const samples = layout.samples(runDirFor(root, workflowId));
  await waitFor('merged samples', () => existsSync(samples), 120_000);
  await sleep(1000);
  const size = readFileSync(samples).length;
  truncateSync(samples, Math.floor(size / 2)); // a torn copy: half the file, the last line cut
  await h.signal(resumeSignal);
  // The file will not heal: the stage must refuse it once, non-retryably, rather than retry 10 times.
  const f = await stageFailure(h, /changed on disk|sha256|truncat/i);
  if (!f.final) await h.terminate('chaos suite: enough seen');
  const ok = f.type === 'rejectSample' && f.final && f.errorType === 'ArtifactChecksumMismatch';
  recordFailedRun(
    'storage: artifact truncated between stages',
    ok,
    `${f.type} ${f.final ? 'failed the run (non-retryable)' : `attempt ${f.attempt}, RETRIED (the file will not heal)`}: ${f.message.slice(0, 160)}`,
  );
  expect(f.type).toBe('rejectSample');
  expect(f.errorType).toBe('ArtifactChecksumMismatch');
  expect(f.final).toBe(true);
});

test('a writer SIGKILLed mid-file leaves only its temp file: the artifact is never there half written', async () => {
  const dir = path.join(s.tmp, 'killed-writer');
  mkdirSync(dir, { recursive: true });
  const target = path.join(dir, 'rows.jsonl');
  const store = path.join(projectRoot, 'dist', 'activities', 'artifacts', 'store.js');
  const script = `
    const { AtomicJsonlWriter } = require(${JSON.stringify(store)});
    (async () => {
      const w = new AtomicJsonlWriter(${JSON.stringify(target)});
      for (let i = 0; ; i++) {
        await w.write({ id: 'r' + i, text: 'x'.repeat(200) });
        if (i === 20000) console.log('writing');
      }
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const files = listDir(dir);
  const temps = files.filter((f) => f.startsWith('.rows.jsonl.'));
  const ok = !existsSync(target) && temps.length === 1;
  recordFailedRun(
    'storage: writer SIGKILLed mid-file',
    ok,
    `target ${existsSync(target) ? 'EXISTS' : 'absent'}; left ${temps.length} temp file(s) (${temps[0] ?? '-'})`,
  );
  expect(existsSync(target)).toBe(false);
  expect(temps).toHaveLength(1);
});
