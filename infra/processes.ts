import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { projectRoot } from './paths';

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  /** The first JSON line the process printed with `event` = the awaited event (e.g. ready, listening). */
  readyInfo: Record<string, unknown>;
  stop(): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

/**
 * Starts one of the project's Node entry points (dist/…) and waits for the JSON line announcing it is up.
 * Output goes to `logFile` when given, so a person (or a failing test) can read what happened.
 */
export async function startNodeProcess(opts: {
  name: string;
  script: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  readyEvent: string;
  logFile?: string;
  timeoutMs?: number;
}): Promise<ManagedProcess> {
  const child = spawn(process.execPath, [path.join(projectRoot, opts.script), ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log: NodeJS.WritableStream | undefined;
  if (opts.logFile) {
    mkdirSync(path.dirname(opts.logFile), { recursive: true });
    log = createWriteStream(opts.logFile, { flags: 'a' });
  }
  const tail: string[] = [];
  const keep = (line: string) => {
    log?.write(line + '\n');
    tail.push(line);
    if (tail.length > 30) tail.shift();
  };
  readline.createInterface({ input: child.stderr! }).on('line', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const readyInfo = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${opts.name} not ready after ${opts.timeoutMs ?? 60_000} ms:\n${tail.join('\n')}`)),
      opts.timeoutMs ?? 60_000,
    );
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      if (!line.startsWith('{')) return;
      try {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (msg.event === opts.readyEvent) {
          clearTimeout(timer);
          resolve(msg);
        }
      } catch {
        /* not a status line */
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${opts.name} exited with ${code} before it was ready:\n${tail.join('\n')}`));
    });
  });
  return {
    name: opts.name,
    child,
    readyInfo,
    exited,
    kill: (signal) => child.kill(signal),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 70_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function startCpuWorker(env: NodeJS.ProcessEnv, logFile?: string): Promise<ManagedProcess> {
  return startNodeProcess({ name: 'cpu-worker', script: 'dist/workers/cpu.js', env, readyEvent: 'ready', logFile });
}

export function startGpuWorker(env: NodeJS.ProcessEnv, logFile?: string): Promise<ManagedProcess> {
  return startNodeProcess({ name: 'gpu-worker', script: 'dist/workers/gpu.js', env, readyEvent: 'ready', logFile });
}

export function startLocalTeacher(args: string[], logFile?: string): Promise<ManagedProcess> {
  return startNodeProcess({
    name: 'teacher',
    script: 'dist/infra/teacher/main.js',
    args,
    readyEvent: 'listening',
    logFile,
  });
}
