import { spawn } from 'node:child_process';
import * as readline from 'node:readline';

export interface TrainerEvent {
  event: string;
  [k: string]: unknown;
}

export interface TrainerRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
}

/**
 * Runs a trainer script in its own process group, feeding each JSON line it prints on stdout to `onEvent`.
 * Aborting the signal stops the whole group (torchrun/accelerate children too): SIGTERM, which lets the trainer
 * write a checkpoint, then SIGKILL after `graceMs`.
 */
export function runTrainer(opts: {
  python: string;
  script: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  graceMs?: number;
  onEvent: (e: TrainerEvent) => void;
  onLog?: (line: string) => void;
}): Promise<TrainerRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.python, [opts.script, ...opts.args], { env: opts.env, cwd: opts.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const stderrLines: string[] = [];
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return opts.onLog?.(line);
      try {
        opts.onEvent(JSON.parse(line) as TrainerEvent);
      } catch {
        opts.onLog?.(line);
      }
    });
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrLines.push(line);
      if (stderrLines.length > 40) stderrLines.shift();
      opts.onLog?.(line);
    });
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, opts.graceMs ?? 20_000);
    };
    if (opts.signal?.aborted) stop();
    opts.signal?.addEventListener('abort', stop, { once: true });
    child.on('error', reject);
    child.on('close', (exitCode, signal) => {
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', stop);
      resolve({ exitCode, signal, stderrTail: stderrLines.join('\n') });
    });
  });
}
