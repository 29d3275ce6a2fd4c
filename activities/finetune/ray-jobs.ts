import * as path from 'node:path';
import type { ClusterEngine, JobPhase, JobStatus, Launch } from './cluster-job';
import { httpCall } from './http-json';

/** POSIX shell quoting: Ray runs a job's entrypoint through a shell. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const PHASES: Record<string, JobPhase> = {
  PENDING: 'pending',
  RUNNING: 'running',
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  STOPPED: 'stopped',
};

/**
 * The Ray Jobs API (the dashboard's REST endpoints: POST /api/jobs/, GET /api/jobs/{id}, POST /api/jobs/{id}/stop).
 * A job's entrypoint is infra/trainer/sft/ray_launch.py, which places one torchrun per node in a placement group.
 */
export function rayJobsEngine(opts: {
  address: string;
  python: string;
  trainerDir: string;
  timeoutMs?: number;
}): ClusterEngine {
  const timeout = opts.timeoutMs ?? 30_000;
  const call = (method: string, route: string, body?: unknown) =>
    httpCall(method, `${opts.address}${route}`, {
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
      timeoutMs: timeout,
    });
  return {
    name: 'ray',
    async status(id: string): Promise<JobStatus | null> {
      const r = await call('GET', `/api/jobs/${encodeURIComponent(id)}`);
      if (r.status === 404) return null;
      if (r.status !== 200)
        throw new Error(`Ray Jobs API GET /api/jobs/${id}: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
      const j = JSON.parse(r.text) as { status: string; message?: string; driver_exit_code?: number | null };
      const phase = PHASES[j.status];
      if (!phase) throw new Error(`Ray job ${id} has an unknown status ${j.status}`);
      return {
        phase,
        message: j.message ?? undefined,
        ...(typeof j.driver_exit_code === 'number' ? { exitCode: j.driver_exit_code } : {}),
      };
    },
    async submit(id: string, launch: Launch): Promise<'created' | 'exists'> {
      const entrypoint = [
        opts.python,
        path.join(opts.trainerDir, 'sft', 'ray_launch.py'),
        '--config',
        launch.configPath,
        '--nodes',
        String(launch.nodes),
        '--gpus-per-node',
        String(launch.gpusPerNode),
        '--processes-per-node',
        String(launch.processesPerNode),
        '--events-file',
        launch.eventsFile,
      ]
        .map(shellQuote)
        .join(' ');
      const r = await call('POST', '/api/jobs/', {
        entrypoint,
        submission_id: id,
        runtime_env: { env_vars: { PYTHONUNBUFFERED: '1' } },
        metadata: { 'distillery.job': id },
      });
      if (r.status === 200) return 'created';
      // Ray refuses a submission id it has seen: whoever submitted it first, this is the job to follow.
      if (/already exists/i.test(r.text)) return 'exists';
      throw new Error(`Ray Jobs API POST /api/jobs/: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
    },
    async stop(id: string): Promise<void> {
      const r = await call('POST', `/api/jobs/${encodeURIComponent(id)}/stop`);
      if (r.status !== 200 && r.status !== 404)
        throw new Error(`Ray Jobs API stop ${id}: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
    },
  };
}
