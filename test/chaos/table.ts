import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The chaos suite's results table. Each scenario records one row (a JSON file under the results directory); the
 * table reporter (test/chaos/table-reporter.js) prints them all when the run ends. The directory comes from
 * DISTILLERY_CHAOS_RESULTS (the reporter sets it for the whole jest run); without it rows go to a temp dir.
 */
export interface ChaosRow {
  /** e.g. "crash: SIGKILL cpu worker in generate". */
  fault: string;
  runs: number;
  completed: number;
  /** Ids of the fault-free run's output missing from this run's (summed over the stages compared). */
  lost: number;
  /** Ids that appear more than once in a stage's output, plus ids that the fault-free run does not have. */
  duplicated: number;
  /** Work done twice (unit in `unit`): teacher requests, trainer steps, samples re-verified … */
  redone: number;
  /** The bound `redone` must stay within (one heartbeat or checkpoint window), when there is one. */
  bound?: number | null;
  unit?: string;
  /** Did the row's own assertions hold? (the jest test fails as well when they do not) */
  ok: boolean;
  note?: string;
}

export interface LoadFigures {
  prompts: number;
  samples: number;
  /** Seconds for generate → verify → filter. */
  seconds: number;
  /** Peak RSS (VmHWM) of each process, MiB. */
  peakRssMiB: Record<string, number>;
  largestHistory: { workflowId: string; runId: string; events: number; bytes: number };
  histories: number;
  note?: string;
}

export function resultsDir(): string {
  const dir = process.env.DISTILLERY_CHAOS_RESULTS ?? path.join(os.tmpdir(), `distillery-chaos-results-${process.ppid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

let seq = 0;
export function recordRow(row: ChaosRow): void {
  const file = path.join(resultsDir(), `row-${Date.now()}-${process.pid}-${seq++}.json`);
  writeFileSync(file, JSON.stringify(row));
}

export function recordLoad(figures: LoadFigures): void {
  writeFileSync(path.join(resultsDir(), `load-${Date.now()}-${process.pid}.json`), JSON.stringify(figures));
}

/** A scenario this machine cannot stage (e.g. no tmpfs without root): a row that says so instead of a silent pass. */
export function recordSkipped(fault: string, why: string): void {
  recordRow({ fault, runs: 0, completed: 0, lost: 0, duplicated: 0, redone: 0, bound: null, ok: true, note: `SKIPPED: ${why}` });
}

/** A run that must fail cleanly (a clear error, nothing corrupt left): nothing completes, so nothing can be lost. */
export function recordFailedRun(fault: string, ok: boolean, note: string): void {
  recordRow({ fault, runs: 1, completed: 0, lost: 0, duplicated: 0, redone: 0, bound: null, unit: '-', ok, note });
}
