import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { recordFailedRun, recordRow, recordSkipped } from './table';

const { render, totals } = require('./table-reporter.js') as {
  render: (dir: string) => string;
  totals: (rows: unknown[]) => Record<string, number>;
};

test('the chaos table shows a skipped scenario as SKIP, never ok, and counts the skips', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chaos-table-'));
  const before = process.env.DISTILLERY_CHAOS_RESULTS;
  process.env.DISTILLERY_CHAOS_RESULTS = dir;
  try {
    recordRow({
      fault: 'crash: kill in generate',
      runs: 1,
      completed: 1,
      lost: 0,
      duplicated: 0,
      redone: 2,
      bound: 2,
      unit: 'teacher requests',
      ok: true,
    });
    recordSkipped('storage: read-only artifact root', 'cannot mount a tmpfs here');
    recordFailedRun('bad input: empty dataset', true, 'EmptyDataset in 0.4 s');
    const text = render(dir);
    const line = (fault: string) => text.split('\n').find((l) => l.startsWith(`| ${fault}`))!;
    expect(line('storage: read-only artifact root')).toMatch(/\| SKIP \|/);
    expect(line('storage: read-only artifact root')).not.toMatch(/\| yes \|/);
    // a run that must fail writes nothing to count: "-", not a literal 0
    expect(line('bad input: empty dataset')).toMatch(/^\| bad input: empty dataset +\| +1 \| +0 \| -  +\| - +\| - +\|/);
    expect(text).toContain('totals: 3 scenarios (2 ok, 0 not ok, 1 skipped)');
    expect(text).toContain('SKIPPED scenarios did not run: storage: read-only artifact root');
    expect(totals([{ runs: 1, completed: 1, lost: 3, duplicated: null, ok: false }])).toMatchObject({
      lost: 3,
      duplicated: 0,
      bad: 1,
      skipped: 0,
    });
  } finally {
    if (before === undefined) delete process.env.DISTILLERY_CHAOS_RESULTS;
    else process.env.DISTILLERY_CHAOS_RESULTS = before;
    rmSync(dir, { recursive: true, force: true });
  }
});
