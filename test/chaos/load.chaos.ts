import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { formatLoad, runLoad } from '../../bench/load/load';
import { runDirFor } from '../../activities/artifacts/store';
import { accountingProblems, accountRun } from './harness';
import { recordLoad, recordRow } from './table';

/**
 * Load: N prompts through generate → verify → filter (bench/load): CHAOS_LOAD_N, default 100,000 (about
 * 3 minutes on two cores); a smaller N for a quick look. `LOAD_PROMPTS=… npm run bench:load` runs the same by hand.
 * Peak RSS of each process must stay bounded and every history far below Temporal's limits.
 */

jest.setTimeout(4 * 3_600_000);

const N = Number(process.env.CHAOS_LOAD_N ?? 100_000);
const MAX_WORKER_RSS_MIB = Number(process.env.CHAOS_LOAD_MAX_RSS_MIB ?? 1536);

test(`${N} prompts through generate → verify → filter: bounded memory, small histories`, async () => {
  // keep: the run's files are counted below (every prompt's samples, every sample's verdict and filter decision)
  const r = await runLoad({ prompts: N, keep: true, log: (l) => process.stdout.write(l + '\n') });
  const account = await accountRun(runDirFor(path.join(r.tmp, 'artifacts'), `load-${N}`), 4).finally(() =>
    rmSync(r.tmp, { recursive: true, force: true }),
  );
  process.stdout.write(formatLoad(r) + '\n');
  const worker = Object.entries(r.peakRssMiB).find(([k]) => k.startsWith('cpu worker'))?.[1] ?? Infinity;
  const h = r.largestHistory;
  recordLoad({
    prompts: r.prompts,
    samples: r.samples,
    seconds: r.seconds,
    peakRssMiB: r.peakRssMiB,
    largestHistory: h,
    histories: r.histories.length,
    note: `stage seconds ${JSON.stringify(Object.fromEntries(Object.entries(r.stageSeconds).map(([k, v]) => [k, Math.round(v)])))}`,
  });
  const counts = r.counts;
  const accounted =
    counts.prepare?.kept === N &&
    r.samples === N * 4 &&
    counts.verify?.in === r.samples &&
    counts.filter?.in === counts.verify?.accepted &&
    account.lost === 0 &&
    account.duplicated === 0;
  const ok = accounted && worker < MAX_WORKER_RSS_MIB && h.events < 10_240 && h.bytes < 10 * 1024 * 1024;
  recordRow({
    fault: `load: ${N} prompts, generate → verify → filter`,
    runs: 1,
    completed: 1,
    lost: account.lost,
    duplicated: account.duplicated,
    redone: null,
    bound: null,
    unit: '-',
    ok,
    note: `${accountingProblems(account) ? `${accountingProblems(account)}; ` : ''}cpu worker peak RSS ${worker.toFixed(0)} MiB (limit ${MAX_WORKER_RSS_MIB}); largest history ${h.events} events / ${(h.bytes / 1024).toFixed(0)} KiB; ${r.seconds.toFixed(0)} s`,
  });
  expect(accountingProblems(account)).toBe('');
  expect(account.stages.find((st) => st.stage === 'generate')!.in).toBe(N * 4);
  expect(accounted).toBe(true);
  expect(worker).toBeLessThan(MAX_WORKER_RSS_MIB);
  expect(h.events).toBeLessThan(10_240);
  expect(h.bytes).toBeLessThan(10 * 1024 * 1024);
});
