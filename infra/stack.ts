import * as path from 'node:path';
import { startDevServer, type DevServer } from './temporal';
import { startCpuWorker, startGpuWorker, startLocalTeacher, type ManagedProcess } from './processes';

export interface StackOptions {
  stateDir: string;
  port?: number;
  uiPort?: number;
  headless?: boolean;
  teacherPort?: number;
  teacher?: boolean;
  gpuSlots?: string;
}

export interface Stack {
  server: DevServer;
  teacherUrl: string | null;
  processes: ManagedProcess[];
  stop(): Promise<void>;
}

/**
 * Everything a distillation needs on one machine: the Temporal dev server (SQLite under stateDir, Web UI),
 * the local teacher, a CPU worker and a GPU worker. Used by `distill up` and `distill demo`.
 */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const logs = path.join(opts.stateDir, 'logs');
  const server = await startDevServer({
    port: opts.port,
    uiPort: opts.uiPort,
    headless: opts.headless,
    dbFile: path.join(opts.stateDir, 'temporal.sqlite'),
    logFile: path.join(logs, 'temporal.log'),
  });
  const processes: ManagedProcess[] = [];
  const stop = async () => {
    for (const p of processes.reverse()) await p.stop();
    await server.stop();
  };
  try {
    let teacherUrl: string | null = null;
    if (opts.teacher !== false) {
      const teacher = await startLocalTeacher(
        ['--port', String(opts.teacherPort ?? 0)],
        path.join(logs, 'teacher.log'),
      );
      processes.push(teacher);
      teacherUrl = String(teacher.readyInfo.url);
    }
    const env = { TEMPORAL_ADDRESS: server.address, ...(opts.gpuSlots ? { DISTILLERY_GPU_SLOTS: opts.gpuSlots } : {}) };
    processes.push(await startCpuWorker(env, path.join(logs, 'cpu-worker.log')));
    processes.push(await startGpuWorker(env, path.join(logs, 'gpu-worker.log')));
    return { server, teacherUrl, processes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
