/**
 * Jest reporter of the chaos suite: gives the run a results directory (DISTILLERY_CHAOS_RESULTS, inherited by the
 * test processes) and, when the run ends, prints the table the scenarios recorded (test/chaos/table.ts):
 * fault, runs, completed, lost, duplicated, redone (with its bound), ok (yes, NO, or SKIP for a scenario that did
 * not run), the totals with the count of skipped scenarios, and the load figures.
 * Also writes the table to $DISTILLERY_CHAOS_TABLE (a file) when set, e.g. for a CI artifact.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function read(dir) {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  const load = (f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  return {
    rows: files.filter((f) => f.startsWith('row-')).map(load),
    loads: files.filter((f) => f.startsWith('load-')).map(load),
  };
}

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    '| ' +
    cells
      .map((c, i) =>
        i === 0 || (typeof c === 'string' && isNaN(Number(c)))
          ? String(c).padEnd(widths[i])
          : String(c).padStart(widths[i]),
      )
      .join(' | ') +
    ' |';
  return [line(headers), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

const dash = (v) => (v === null || v === undefined ? '-' : v);
/** A skipped scenario is SKIP whatever its ok field says: it proved nothing. */
const okCell = (r) => (r.skipped ? 'SKIP' : r.ok ? 'yes' : 'NO');

function totals(rows) {
  const t = { runs: 0, completed: 0, lost: 0, duplicated: 0, ok: 0, bad: 0, skipped: 0 };
  for (const r of rows) {
    t.runs += r.runs;
    t.completed += r.completed;
    t.lost += r.lost || 0;
    t.duplicated += r.duplicated || 0;
    if (r.skipped) t.skipped += 1;
    else if (r.ok) t.ok += 1;
    else t.bad += 1;
  }
  return t;
}

function render(dir) {
  const { rows, loads } = read(dir);
  const out = [];
  out.push('', 'Distillery chaos suite', '');
  if (rows.length) {
    out.push(
      table(
        ['fault', 'runs', 'completed', 'lost', 'duplicated', 'redone', 'bound', 'unit', 'ok', 'note'],
        rows.map((r) => [
          r.fault,
          r.runs,
          r.completed,
          dash(r.lost),
          dash(r.duplicated),
          dash(r.redone),
          dash(r.bound),
          r.unit || '-',
          okCell(r),
          r.note || '',
        ]),
      ),
    );
    const tot = totals(rows);
    out.push(
      '',
      `totals: ${rows.length} scenarios (${tot.ok} ok, ${tot.bad} not ok, ${tot.skipped} skipped), ${tot.runs} runs, ${tot.completed} completed, lost ${tot.lost}, duplicated ${tot.duplicated}`,
    );
    if (tot.skipped)
      out.push(
        `SKIPPED scenarios did not run: ${rows
          .filter((r) => r.skipped)
          .map((r) => r.fault)
          .join('; ')}`,
      );
  } else {
    out.push('(no scenario recorded a row)');
  }
  for (const l of loads) {
    out.push(
      '',
      `load: ${l.prompts} prompts, ${l.samples} samples through generate → verify → filter in ${l.seconds.toFixed(1)} s`,
    );
    out.push(
      table(
        ['process', 'peak RSS (MiB)'],
        Object.entries(l.peakRssMiB).map(([k, v]) => [k, v.toFixed(0)]),
      ),
    );
    const h = l.largestHistory;
    out.push(
      `largest history: ${h.events} events, ${(h.bytes / 1024).toFixed(1)} KiB (${h.workflowId}, of ${l.histories} runs; Temporal's limits 51,200 events / 50 MiB, warnings at 10,240 / 10 MiB)`,
    );
    if (l.note) out.push(l.note);
  }
  return out.join('\n');
}

class ChaosTableReporter {
  constructor() {
    if (!process.env.DISTILLERY_CHAOS_RESULTS) {
      process.env.DISTILLERY_CHAOS_RESULTS = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-chaos-results-'));
    }
    this.dir = process.env.DISTILLERY_CHAOS_RESULTS;
    this.started = Date.now();
  }
  onRunComplete() {
    const text =
      render(this.dir) +
      `\n\nchaos suite wall time: ${((Date.now() - this.started) / 1000).toFixed(0)} s (results in ${this.dir})\n`;
    process.stdout.write(text + '\n');
    if (process.env.DISTILLERY_CHAOS_TABLE) fs.writeFileSync(process.env.DISTILLERY_CHAOS_TABLE, text);
  }
}

module.exports = ChaosTableReporter;
module.exports.render = render;
module.exports.totals = totals;
