#!/usr/bin/env node
import * as path from 'node:path';
import { Command } from 'commander';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { checkRunSpec, describeSpecIssues, runSpecJsonSchema, type RunSpec } from '../schemas/run-spec';
import {
  pauseSignal,
  progressQuery,
  resumeSignal,
  setTeacherLimitsUpdate,
  type RunProgress,
  type TeacherLimits,
} from '../workflows/messages';
import type { RunSummary } from '../workflows/distillation';
import { startStack } from '../infra/stack';
import { projectRoot } from '../infra/paths';
import { readSpecFile } from './spec-file';
import { codecFromEnv, dataConverterFromEnv, newKeyEntry } from '../infra/codec/aes-gcm-codec';
import { startCodecServer } from '../infra/codec/codec-server';
import { activityDetail, progressLine } from './progress-line';
import { scoreLines } from './score-lines';
import { StageClock } from './stage-clock';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { registerVerifyCommand } from './verify-command';
import { registerScheduleCommand } from './schedule-command';

const program = new Command('distill').description(
  'Distil a teacher model’s verified reasoning into a small student, durably, on Temporal.',
);
const defaultAddress = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const stateDir = path.join(projectRoot, '.distillery');

async function connectClient(address: string): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    dataConverter: dataConverterFromEnv(),
  });
}

function loadSpec(file: string, overrides: { teacherUrl?: string }): RunSpec {
  const raw = readSpecFile(file) as Record<string, unknown>;
  if (overrides.teacherUrl && raw.teacher && typeof raw.teacher === 'object')
    (raw.teacher as Record<string, unknown>).baseURL = overrides.teacherUrl;
  const checked = checkRunSpec(raw);
  if (!checked.ok) {
    console.error(describeSpecIssues(checked.issues));
    process.exit(2);
  }
  return checked.spec;
}

/** Starts a run and follows it: a live status line on stderr, the summary as JSON on stdout. */
async function runAndFollow(client: Client, spec: RunSpec, workflowId: string): Promise<RunSummary> {
  const handle = await client.workflow.start('distillationWorkflow', {
    taskQueue: spec.taskQueues.workflow,
    workflowId,
    args: [spec],
  });
  console.error(`started ${workflowId} on task queue ${spec.taskQueues.workflow}`);
  const tty = process.stderr.isTTY;
  let last = '';
  // Off a terminal (a log file, CI) a line only when it changed: within 5 s of a new stage, else at most every 15 s.
  let printed = '';
  let printedStage = '';
  let printedAt = 0;
  let finished = false;
  const clock = new StageClock(Date.now());
  const timer = setInterval(async () => {
    try {
      const progress = await handle.query(progressQuery);
      if (!finished) clock.see(progress.stage, Date.now());
      const detail =
        progress.stage === 'finetune' || progress.stage === 'evaluate' ? await runningDetail(client, handle) : '';
      const line = progressLine(progress) + (detail ? `  ${detail}` : '');
      if (finished) return; // a query answered after the result: the summary is already printed
      if (tty) process.stderr.write(`\r${line.padEnd(last.length)}`);
      else if (line !== printed && Date.now() - printedAt > (progress.stage !== printedStage ? 5000 : 15_000)) {
        console.error(line);
        printed = line;
        printedStage = progress.stage;
        printedAt = Date.now();
      }
      last = line;
    } catch {
      /* the workflow may not have started its first task yet */
    }
  }, 1000);
  let summary: RunSummary;
  try {
    summary = (await handle.result()) as RunSummary;
  } finally {
    finished = true;
    clearInterval(timer);
    if (tty) process.stderr.write('\n');
  }
  console.error(clock.line(Date.now()));
  return summary;
}

/** The heartbeat of the run's running fine-tune or evaluate activity, as a few words ('' when there is none). */
async function runningDetail(client: Client, handle: ReturnType<Client['workflow']['getHandle']>): Promise<string> {
  const pending = (await handle.describe()).raw.pendingActivities ?? [];
  for (const a of pending) {
    const type = a.activityType?.name ?? '';
    if (!a.heartbeatDetails?.payloads?.length) continue;
    const details = await decodeFromPayloadsAtIndex<Record<string, unknown>>(
      client.options.loadedDataConverter,
      0,
      a.heartbeatDetails.payloads,
    ).catch(() => null);
    const text = activityDetail(type, details);
    if (text) return text;
  }
  return '';
}

/** Runs left open in the demo's server (an interrupted demo) resume now and share the workers with the new run. */
async function warnOfOpenRuns(client: Client, address: string): Promise<void> {
  const open: string[] = [];
  for await (const w of client.workflow.list({
    query: 'ExecutionStatus = "Running" AND WorkflowType = "distillationWorkflow"',
  }))
    open.push(w.workflowId);
  if (open.length === 0) return;
  console.error(
    `note: ${open.length} earlier run(s) still open on this server resume now and share the workers: ${open.join(', ')}`,
  );
  console.error(
    `      (cancel them in the Web UI, or while this demo runs: node dist/cli/distill.js cancel <id> --address ${address})`,
  );
}

function printScores(summary: RunSummary, spec: RunSpec): void {
  console.error('');
  for (const line of scoreLines(summary, spec)) console.error(line);
  if (summary.gate)
    console.error(`gate: ${summary.gate.promote ? 'PROMOTED' : 'not promoted'} (${summary.gate.reasons.join('; ')})`);
  console.error(`artifacts: ${summary.runDir}`);
  if (summary.artifacts.reportHtml) console.error(`report: ${summary.artifacts.reportHtml.uri}`);
}

function explainFailure(err: unknown): never {
  if (err instanceof WorkflowFailedError) {
    const cause = err.cause as { message?: string } | undefined;
    console.error(`run failed: ${cause?.message ?? err.message}`);
  } else console.error(err);
  process.exit(1);
}

program
  .command('run <spec>')
  .description('start a distillation from a YAML/JSON run spec and follow its progress')
  .option('--address <host:port>', 'Temporal frontend', defaultAddress)
  .option('--id <workflowId>', 'workflow id (default: <name>-<timestamp>)')
  .option('--teacher-url <url>', 'override teacher.baseURL')
  .action(async (file: string, opts: { address: string; id?: string; teacherUrl?: string }) => {
    const spec = loadSpec(file, opts);
    const client = await connectClient(opts.address);
    try {
      const summary = await runAndFollow(client, spec, opts.id ?? `${spec.name}-${Date.now()}`);
      console.log(JSON.stringify(summary, null, 2));
      printScores(summary, spec);
    } catch (err) {
      explainFailure(err);
    }
    await client.connection.close();
  });

program
  .command('status <workflowId>')
  .description('show the live progress of a run')
  .option('--address <host:port>', 'Temporal frontend', defaultAddress)
  .action(async (workflowId: string, opts: { address: string }) => {
    const client = await connectClient(opts.address);
    const handle = client.workflow.getHandle(workflowId);
    const desc = await handle.describe();
    let progress: RunProgress | null = null;
    try {
      progress = await handle.query(progressQuery);
    } catch (err) {
      progress = null;
      console.error(`(progress query unavailable: ${(err as Error).message})`);
    }
    console.log(
      JSON.stringify(
        {
          workflowId,
          status: desc.status.name,
          startTime: desc.startTime,
          closeTime: desc.closeTime ?? null,
          progress,
        },
        null,
        2,
      ),
    );
    if (progress) console.error(progressLine(progress));
    await client.connection.close();
  });

/** A command that sends one message to a run and says so: pause, resume, cancel. */
function runMessageCommand(
  name: string,
  description: string,
  send: (handle: ReturnType<Client['workflow']['getHandle']>) => Promise<void>,
  done: string,
): void {
  program
    .command(`${name} <workflowId>`)
    .description(description)
    .option('--address <host:port>', 'Temporal frontend', defaultAddress)
    .action(async (workflowId: string, opts: { address: string }) => {
      const client = await connectClient(opts.address);
      await send(client.workflow.getHandle(workflowId));
      console.error(`${done} ${workflowId}`);
      await client.connection.close();
    });
}

runMessageCommand(
  'pause',
  'pause a run: no new stage or generation shard starts; work in flight finishes',
  (h) => h.signal(pauseSignal),
  'paused',
);
runMessageCommand('resume', 'resume a paused run', (h) => h.signal(resumeSignal), 'resumed');
runMessageCommand(
  'cancel',
  'cancel a run: activities stop, artifacts so far are kept (listed by `distill status`)',
  async (h) => void (await h.cancel()),
  'cancellation requested for',
);

program
  .command('limits <workflowId>')
  .description('change the teacher concurrency of a running generation')
  .option('--address <host:port>', 'Temporal frontend', defaultAddress)
  .option('--max-in-flight <n>', 'requests in flight to the endpoint per worker')
  .option('--concurrency <n>', 'request lanes per shard')
  .option('--shards <n>', 'shards in flight')
  .action(
    async (
      workflowId: string,
      opts: { address: string; maxInFlight?: string; concurrency?: string; shards?: string },
    ) => {
      const limits: TeacherLimits = {
        ...(opts.maxInFlight ? { maxInFlight: Number(opts.maxInFlight) } : {}),
        ...(opts.concurrency ? { concurrency: Number(opts.concurrency) } : {}),
        ...(opts.shards ? { maxShardsInFlight: Number(opts.shards) } : {}),
      };
      const client = await connectClient(opts.address);
      console.log(
        JSON.stringify(
          await client.workflow.getHandle(workflowId).executeUpdate(setTeacherLimitsUpdate, { args: [limits] }),
        ),
      );
      await client.connection.close();
    },
  );

program
  .command('up')
  .description('start the embedded stack: Temporal dev server + Web UI, local teacher, CPU and GPU workers')
  .option('--port <n>', 'Temporal frontend port', '7233')
  .option('--ui-port <n>', 'Web UI port', '8233')
  .option('--teacher-port <n>', 'local teacher port', '8400')
  .option('--gpu-slots <slots>', 'GPU slots, e.g. "0,1" or "cpu"', process.env.DISTILLERY_GPU_SLOTS ?? 'cpu')
  .action(async (opts: { port: string; uiPort: string; teacherPort: string; gpuSlots: string }) => {
    const stack = await startStack({
      stateDir,
      port: Number(opts.port),
      uiPort: Number(opts.uiPort),
      teacherPort: Number(opts.teacherPort),
      gpuSlots: opts.gpuSlots,
    });
    console.log(
      JSON.stringify({
        event: 'up',
        temporal: stack.server.address,
        ui: stack.server.uiUrl,
        teacher: stack.teacherUrl,
        logs: path.join(stateDir, 'logs'),
      }),
    );
    console.error(
      `Temporal ${stack.server.address}  Web UI ${stack.server.uiUrl}  teacher ${stack.teacherUrl}\nCtrl-C stops everything.`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await stack.stop();
  });

program
  .command('demo')
  .description('run a full distillation of the embedded default on this machine, end to end')
  .option('--spec <file>', 'run spec', path.join(projectRoot, 'specs', 'embedded-default.yaml'))
  .action(async (opts: { spec: string }) => {
    const started = Date.now();
    const stack = await startStack({ stateDir, headless: false });
    // Interrupted (Ctrl-C, a kill): stop the server, the workers and the teacher rather than leave them running.
    // The run itself stays in the server's database and resumes at the next `distill up` or demo.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        console.error(`\n${sig}: stopping the stack (the run resumes when the stack is next started)`);
        void stack.stop().finally(() => process.exit(130));
      });
    }
    console.error(`Temporal ${stack.server.address}  Web UI ${stack.server.uiUrl}  teacher ${stack.teacherUrl}`);
    const spec = loadSpec(opts.spec, { teacherUrl: stack.teacherUrl ?? undefined });
    const client = await connectClient(stack.server.address);
    await warnOfOpenRuns(client, stack.server.address);
    try {
      const summary = await runAndFollow(client, spec, `${spec.name}-${Date.now()}`);
      printScores(summary, spec);
      console.error(`summary: ${summary.artifacts.evalSummary?.uri}`);
      console.error(`demo wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
    } catch (err) {
      await stack.stop();
      explainFailure(err);
    }
    await client.connection.close();
    await stack.stop();
  });

program
  .command('codec-key')
  .description('print a new random AES-256 key entry for DISTILLERY_CODEC_KEYS (id:base64)')
  .action(() => console.log(newKeyEntry()));

program
  .command('codec-server')
  .description(
    'serve /encode and /decode for the Temporal Web UI with the keys in DISTILLERY_CODEC_KEYS; requests need Authorization: Bearer $DISTILLERY_CODEC_SERVER_TOKEN',
  )
  .option('--port <n>', 'port', '8888')
  .option('--host <address>', 'address to listen on', '127.0.0.1')
  .option(
    '--allow-origin <origins>',
    'the Web UI origins allowed by CORS, comma-separated (never *)',
    'http://127.0.0.1:8233,http://localhost:8233',
  )
  .option('--max-body-mb <n>', 'largest request body, MiB', '8')
  .action(async (opts: { port: string; host: string; allowOrigin: string; maxBodyMb: string }) => {
    const codec = codecFromEnv();
    if (!codec) {
      console.error('DISTILLERY_CODEC_KEYS (or DISTILLERY_CODEC_KEY_FILE) is not set: nothing to decrypt with');
      process.exit(2);
    }
    const token = process.env.DISTILLERY_CODEC_SERVER_TOKEN ?? '';
    if (token.length < 16) {
      console.error(
        'DISTILLERY_CODEC_SERVER_TOKEN must hold the bearer token clients send (at least 16 characters, e.g. `openssl rand -hex 32`)',
      );
      process.exit(2);
    }
    const server = await startCodecServer({
      codec,
      port: Number(opts.port),
      host: opts.host,
      allowOrigins: opts.allowOrigin
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
      token,
      maxBodyBytes: Math.round(Number(opts.maxBodyMb) * 1024 * 1024),
    });
    console.log(JSON.stringify({ event: 'listening', url: server.url }));
  });

program
  .command('schema')
  .description('print the run spec’s JSON Schema')
  .action(() => console.log(JSON.stringify(runSpecJsonSchema(), null, 2)));

registerVerifyCommand(program);
registerScheduleCommand(program, { defaultAddress, connectClient, loadSpec });

program.parseAsync(process.argv).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
