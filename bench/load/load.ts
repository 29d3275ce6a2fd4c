import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startDevServer } from '../../infra/temporal';
import { startCpuWorker, startLocalTeacher, type ManagedProcess } from '../../infra/processes';
import { progressQuery, type RunProgress } from '../../workflows/messages';

/**
 * The load run of the reliability suite: N prompts through generate → verify → filter of the real distillation
 * workflow (real dev server with SQLite, a real CPU worker process, the local procedural teacher as its own process,
 * no added latency: a fast local endpoint). No GPU worker polls, so the run waits at fine-tune once filtering is done;
 * it is measured there and terminated. Reports each process's peak RSS (VmHWM, sampled every second as well in case a
 * process exits) and the largest workflow history (events and encoded bytes) over the run and every run of its
 * generation child.
 */
export interface LoadOptions {
  prompts: number;
  n?: number;
  shardSize?: number;
  maxShardsInFlight?: number;
  concurrency?: number;
  /** Keep the temp dir (artifacts, logs, SQLite) for a look afterwards. */
  keep?: boolean;
  log?: (line: string) => void;
  timeoutMs?: number;
}

export interface LoadResult {
  prompts: number;
  samples: number;
  counts: RunProgress['counts'];
  seconds: number;
  stageSeconds: Record<string, number>;
  peakRssMiB: Record<string, number>;
  histories: { workflowId: string; runId: string; events: number; bytes: number }[];
  largestHistory: { workflowId: string; runId: string; events: number; bytes: number };
  tmp: string;
}

function status(pid: number): { rss: number; hwm: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0);
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

export async function historySizes(client: Client, workflowIds: string[]): Promise<LoadResult['histories']> {
  const out: LoadResult['histories'] = [];
  for (const id of workflowIds) {
    for await (const r of client.workflow.list({ query: `WorkflowId = "${id}"` })) {
      const history = await client.workflow.getHandle(id, r.runId).fetchHistory();
      const bytes = temporal.api.history.v1.History.encode(
        temporal.api.history.v1.History.create(history as temporal.api.history.v1.IHistory),
      ).finish().length;
      out.push({ workflowId: id, runId: r.runId, events: history.events?.length ?? 0, bytes });
    }
  }
  return out;
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'distillery-load-'));
  const server = await startDevServer({
    headless: true,
    dbFile: path.join(tmp, 'temporal.sqlite'),
    logFile: path.join(tmp, 'temporal.log'),
  });
  const processes: ManagedProcess[] = [];
  const peaks = new Map<string, number>();
  const pids = new Map<string, number>([['temporal dev server', server.process.pid!]]);
  const sample = () => {
    for (const [name, pid] of pids) {
      const st = status(pid);
      if (st) peaks.set(name, Math.max(peaks.get(name) ?? 0, st.rss, st.hwm));
    }
  };
  const sampler = setInterval(sample, 1000);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  try {
    const teacher = await startLocalTeacher(
      ['--port', '0', '--max-in-flight', '100000'],
      path.join(tmp, 'teacher.log'),
    );
    processes.push(teacher);
    pids.set('teacher (local endpoint)', teacher.child.pid!);
    const cpu = await startCpuWorker(
      { TEMPORAL_ADDRESS: server.address, DISTILLERY_LOG_LEVEL: 'WARN' },
      path.join(tmp, 'cpu-worker.log'),
    );
    processes.push(cpu);
    pids.set('cpu worker (generate, verify, filter, workflows)', cpu.child.pid!);
    const n = opts.n ?? 4;
    const spec = {
      name: 'load',
      dataset: {
        source: { type: 'builtin', task: 'arithmetic', count: opts.prompts, seed: 1, digits: 3, ops: ['+', '-'] },
      },
      teacher: {
        baseURL: String(teacher.readyInfo.url),
        model: 'procedural-arithmetic-teacher',
        concurrency: opts.concurrency ?? 16,
        maxInFlight: 64,
      },
      sampling: { n, temperature: 1.0, top_p: 0.95, max_tokens: 256, seed: 7 },
      verifier: { type: 'math', keepPerPrompt: 2 },
      generation: { shardSize: opts.shardSize ?? 100, maxShardsInFlight: opts.maxShardsInFlight ?? 4 },
      fineTune: { maxSteps: 1 },
      evaluation: { benchmark: { type: 'builtin', task: 'arithmetic', count: 4, seed: 2 }, baseline: false },
      timeouts: { heartbeatSeconds: 60 },
      artifactRoot: path.join(tmp, 'artifacts'),
    };
    const workflowId = `load-${opts.prompts}`;
    const started = Date.now();
    const h = await client.workflow.start('distillationWorkflow', {
      taskQueue: 'distillery',
      workflowId,
      args: [spec],
    });
    const stageSeconds: Record<string, number> = {};
    let stage = '';
    let stageAt = started;
    let lastLog = 0;
    let p: RunProgress | null = null;
    const deadline = started + (opts.timeoutMs ?? 4 * 3_600_000);
    for (;;) {
      p = await h.query<RunProgress>(progressQuery).catch(() => p);
      if (p && p.stage !== stage) {
        if (stage) stageSeconds[stage] = (Date.now() - stageAt) / 1000;
        stage = p.stage;
        stageAt = Date.now();
      }
      if (p?.stage === 'finetune') break;
      const d = await h.describe();
      if (d.status.name !== 'RUNNING') throw new Error(`load run ended ${d.status.name} in stage ${p?.stage}`);
      if (Date.now() > deadline)
        throw new Error(`load run not through filtering after ${opts.timeoutMs} ms (stage ${p?.stage})`);
      if (Date.now() - lastLog > 30_000) {
        lastLog = Date.now();
        const g = p?.generation;
        log(
          `  ${((Date.now() - started) / 1000).toFixed(0)} s: stage ${p?.stage}${g ? `, shards ${g.shardsDone}/${g.shardCount}, samples ${g.samples}` : ''}`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const seconds = (Date.now() - started) / 1000;
    sample();
    const histories = await historySizes(client, [workflowId, `${workflowId}-generate`]);
    await h.terminate('load run measured through filtering');
    const largestHistory = histories.reduce((a, b) =>
      b.events > a.events || (b.events === a.events && b.bytes > a.bytes) ? b : a,
    );
    return {
      prompts: opts.prompts,
      samples: Number(p!.counts.generate?.samples ?? 0),
      counts: p!.counts,
      seconds,
      stageSeconds,
      peakRssMiB: Object.fromEntries([...peaks].map(([k, v]) => [k, v / 1024])),
      histories,
      largestHistory,
      tmp,
    };
  } finally {
    clearInterval(sampler);
    for (const pr of processes.reverse()) await pr.stop();
    await connection.close();
    await server.stop();
    if (!opts.keep) rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatLoad(r: LoadResult): string {
  const lines = [
    `load: ${r.prompts} prompts → ${r.samples} samples through generate → verify → filter in ${r.seconds.toFixed(1)} s (${(r.samples / r.seconds).toFixed(0)} samples/s)`,
    `  stage seconds: ${Object.entries(r.stageSeconds)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ')}`,
    `  counts: prepare ${JSON.stringify(r.counts.prepare)}, verify in ${r.counts.verify?.in} accepted ${r.counts.verify?.accepted} rejected ${r.counts.verify?.rejected}, filter in ${r.counts.filter?.in} kept ${r.counts.filter?.kept} rejected ${r.counts.filter?.rejected}`,
    '  peak RSS (VmHWM):',
    ...Object.entries(r.peakRssMiB).map(([k, v]) => `    ${k.padEnd(50)} ${v.toFixed(0).padStart(6)} MiB`),
    `  histories: ${r.histories.length} runs (the run and its generation child's continue-as-new chain); largest ${r.largestHistory.events} events, ${(r.largestHistory.bytes / 1024).toFixed(1)} KiB (${r.largestHistory.workflowId}); Temporal's limits 51,200 events / 50 MiB (warnings at 10,240 / 10 MiB)`,
    ...r.histories.map(
      (h) => `    ${h.workflowId} ${h.runId.slice(0, 8)}: ${h.events} events, ${(h.bytes / 1024).toFixed(1)} KiB`,
    ),
  ];
  return lines.join('\n');
}
