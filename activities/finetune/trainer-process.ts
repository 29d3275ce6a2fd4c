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
    const child = spawn(opts.python, [opts.script, ...opts.args], {
      env: opts.env,
      cwd: opts.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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

/** What a trainer run reported through its events, for the activity's result and its error messages. */
export interface DrivenRun extends TrainerRun {
  resumedFromStep: number;
  lastStep: number;
  lastCheckpoint: string | null;
  lastLoss: number | null;
  tokensPerSecond: number | null;
  done?: TrainerEvent;
}

/**
 * Runs a trainer that speaks the start/step/checkpoint/done protocol (train_tiny.py, sft/train_sft.py) and keeps the
 * activity's heartbeat going: on every event, and every 2 s in between, since a trainer can be silent for a while
 * (imports, model loading, checkpoint writes, exports) and the heartbeat must not be.
 */
export async function driveTrainer(opts: {
  python: string;
  script: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  heartbeat?: (details: { step: number; total: number | null; checkpoint: string | null; loss: number | null }) => void;
  onStep?: (e: TrainerEvent) => void;
  onLog?: (line: string) => void;
}): Promise<DrivenRun> {
  const s = {
    resumedFromStep: 0,
    lastStep: 0,
    totalSteps: null as number | null,
    lastCheckpoint: null as string | null,
    lastLoss: null as number | null,
    tokensPerSecond: null as number | null,
    done: undefined as TrainerEvent | undefined,
  };
  const beat = () =>
    opts.heartbeat?.({ step: s.lastStep, total: s.totalSteps, checkpoint: s.lastCheckpoint, loss: s.lastLoss });
  const ticker = setInterval(beat, 2000);
  try {
    const run = await runTrainer({
      python: opts.python,
      script: opts.script,
      args: opts.args,
      env: opts.env,
      signal: opts.signal,
      onLog: opts.onLog,
      onEvent: (e) => {
        if (e.event === 'start') s.resumedFromStep = Number(e.resumed_from_step ?? 0);
        if (e.event === 'step') {
          s.lastStep = Number(e.step);
          if (e.total_steps !== undefined) s.totalSteps = Number(e.total_steps);
          s.lastLoss = Number(e.loss);
          s.tokensPerSecond = Number(e.tokens_per_s);
          opts.onStep?.(e);
        }
        if (e.event === 'checkpoint') s.lastCheckpoint = String(e.path);
        if (e.event === 'done') s.done = e;
        beat();
      },
    });
    return { ...run, ...s };
  } finally {
    clearInterval(ticker);
  }
}
