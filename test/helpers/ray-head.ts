import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { pythonBin } from '../../infra/paths';

/** Whether the trainer's venv has Ray (infra/trainer/requirements.txt pins ray[default]). */
export function haveRay(): boolean {
  try {
    return spawnSync(pythonBin(), ['-c', 'import ray, ray.dashboard'], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface RayHead {
  /** The dashboard (Jobs API) base URL. */
  address: string;
  tempDir: string;
  stop(): Promise<void>;
}

const MARKER = 'DISTILLERY_TEST_RAY_HEAD';

/** PIDs of the processes of this Ray head: every one inherits the marker variable naming its temp dir. */
function headPids(tempDir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, 'utf8').split('\0').includes(`${MARKER}=${tempDir}`)) out.push(Number(e));
    } catch {
      /* exited */
    }
  }
  return out;
}

/**
 * A local Ray head with the dashboard (Jobs API) on 127.0.0.1, 2 CPUs, its own temp dir and ports: `ray start --head
 * --block` in its own process group. stop() ends that group, then SIGKILLs any process of this head still running
 * (Ray starts daemons in their own sessions, and workers rename themselves), found by a marker in its environment.
 */
export async function startRayHead(): Promise<RayHead> {
  const tempDir = mkdtempSync('/tmp/rayt-');
  const [gcs, dashboard, client, agentHttp, agentGrpc, metrics, runtimeEnv] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const ray = path.join(path.dirname(pythonBin()), 'ray');
  const child: ChildProcess = spawn(
    ray,
    [
      'start',
      '--head',
      '--block',
      '--num-cpus=2',
      '--num-gpus=0',
      `--port=${gcs}`,
      '--node-ip-address=127.0.0.1',
      '--include-dashboard=true',
      '--dashboard-host=127.0.0.1',
      `--dashboard-port=${dashboard}`,
      `--ray-client-server-port=${client}`,
      `--dashboard-agent-listen-port=${agentHttp}`,
      `--dashboard-agent-grpc-port=${agentGrpc}`,
      `--metrics-export-port=${metrics}`,
      `--runtime-env-agent-port=${runtimeEnv}`,
      '--disable-usage-stats',
      `--temp-dir=${tempDir}`,
    ],
    { detached: true, stdio: 'ignore', env: { ...process.env, RAY_USAGE_STATS_ENABLED: '0', [MARKER]: tempDir } },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `http://127.0.0.1:${dashboard}`;
  const stop = async () => {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    for (const pid of headPids(tempDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (existsSync(tempDir)) rmSync(tempDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 240_000;
  for (;;) {
    try {
      const r = await fetch(`${address}/api/jobs/`, { signal: AbortSignal.timeout(5000) });
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`the Ray head did not start (exit ${child.exitCode}); logs in ${tempDir}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { address, tempDir, stop };
}
