import { formatLoad, runLoad } from '../../bench/load/load';
import { recordLoad, recordRow } from './table';

/**
 * Load: N prompts through generate → verify → filter (bench/load): CHAOS_LOAD_N, default the 100,000 (about
 * 3 minutes on two cores); a smaller N for a quick look. `LOAD_PROMPTS=… npm run bench:load` runs the same by hand.
 * Peak RSS of each process must stay bounded and every history far below Temporal's limits.
 */

jest.setTimeout(4 * 3_600_000);

const N = Number(process.env.CHAOS_LOAD_N ?? 100_000);
const MAX_WORKER_RSS_MIB = Number(process.env.CHAOS_LOAD_MAX_RSS_MIB ?? 1536);

test(`${N} prompts through generate → verify → filter: bounded memory, small histories`, async () => {
  const r = await runLoad({ prompts: N, log: (l) => process.stdout.write(l + '\n') });
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
  const accounted = counts.prepare?.kept === N && r.samples === N * 4 && counts.verify?.in === r.samples && counts.filter?.in === counts.verify?.accepted;
  const ok = accounted && worker < MAX_WORKER_RSS_MIB && h.events < 10_240 && h.bytes < 10 * 1024 * 1024;
  recordRow({
    fault: `load: ${N} prompts, generate → verify → filter`,
    runs: 1,
    completed: 1,
    lost: N * 4 - r.samples,
    duplicated: 0,
    redone: 0,
    bound: null,
    unit: '-',
    ok,
    note: `cpu worker peak RSS ${worker.toFixed(0)} MiB (limit ${MAX_WORKER_RSS_MIB}); largest history ${h.events} events / ${(h.bytes / 1024).toFixed(0)} KiB; ${r.seconds.toFixed(0)} s`,
  });
  expect(accounted).toBe(true);
  expect(worker).toBeLessThan(MAX_WORKER_RSS_MIB);
  expect(h.events).toBeLessThan(10_240);
  expect(h.bytes).toBeLessThan(10 * 1024 * 1024);
});
