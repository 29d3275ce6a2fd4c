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
  /**
   * Ids the run should have written and did not, counted from the artifacts on disk (sample ids in the files, against
   * the prompts × n the run was given or a fault-free run's files). null: the run must fail before it writes any
   * output, so there is nothing to count (shown as "-").
   */
  lost: number | null;
  /** Ids written more than once, or that should not exist at all, counted from the artifacts on disk. null as above. */
  duplicated: number | null;
  /** Work done twice, measured (unit in `unit`): teacher requests, trainer steps, stage attempts. null: nothing redone by design. */
  redone: number | null;
  /** The bound `redone` must stay within (one heartbeat or checkpoint window), when the stage has one. */
  bound?: number | null;
  unit?: string;
  /** Did the row's own assertions hold? (the jest test fails as well when they do not) */
  ok: boolean;
  /** The scenario did not run (a missing prerequisite): shown as SKIP, never as ok. */
  skipped?: boolean;
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
  const dir =
    process.env.DISTILLERY_CHAOS_RESULTS ?? path.join(os.tmpdir(), `distillery-chaos-results-${process.ppid}`);
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

/** A scenario this machine cannot stage (e.g. no tmpfs without root): a row that says SKIP, never ok. */
export function recordSkipped(fault: string, why: string): void {
  recordRow({
    fault,
    runs: 0,
    completed: 0,
    lost: null,
    duplicated: null,
    redone: null,
    bound: null,
    ok: false,
    skipped: true,
    note: `SKIPPED: ${why}`,
  });
}

/**
 * A run that must fail cleanly (a clear error, nothing corrupt left): nothing completes. `counts`: what the files it
 * left say (e.g. duplicate ids in partial shards), when it left any; without them the row shows "-".
 */
export function recordFailedRun(
  fault: string,
  ok: boolean,
  note: string,
  counts: { lost: number; duplicated: number } | null = null,
): void {
  recordRow({
    fault,
    runs: 1,
    completed: 0,
    lost: counts?.lost ?? null,
    duplicated: counts?.duplicated ?? null,
    redone: null,
    bound: null,
    unit: '-',
    ok,
    note,
  });
}
