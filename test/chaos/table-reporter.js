/* eslint-disable */
/**
 * Jest reporter of the chaos suite: gives the run a results directory (DISTILLERY_CHAOS_RESULTS, inherited by the
 * test processes) and, when the run ends, prints the table the scenarios recorded (test/chaos/table.ts):
 * fault, runs, completed, lost, duplicated, redone (with its bound), and the load figures.
 * Also writes the table to $DISTILLERY_CHAOS_TABLE (a file) when set, e.g. for a CI artifact.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function read(dir) {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  const load = (f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  return { rows: files.filter((f) => f.startsWith('row-')).map(load), loads: files.filter((f) => f.startsWith('load-')).map(load) };
}

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => '| ' + cells.map((c, i) => (i === 0 || typeof c === 'string' && isNaN(Number(c)) ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ') + ' |';
  return [line(headers), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

function render(dir) {
  const { rows, loads } = read(dir);
  const out = [];
  out.push('', 'Distillery chaos suite', '');
  if (rows.length) {
    out.push(
      table(
        ['fault', 'runs', 'completed', 'lost', 'duplicated', 'redone', 'bound', 'unit', 'ok', 'note'],
        rows.map((r) => [r.fault, r.runs, r.completed, r.lost, r.duplicated, r.redone, r.bound == null ? '-' : r.bound, r.unit || '-', r.ok ? 'yes' : 'NO', r.note || '']),
      ),
    );
    const tot = rows.reduce((t, r) => ({ runs: t.runs + r.runs, completed: t.completed + r.completed, lost: t.lost + r.lost, duplicated: t.duplicated + r.duplicated, bad: t.bad + (r.ok ? 0 : 1) }), { runs: 0, completed: 0, lost: 0, duplicated: 0, bad: 0 });
    out.push('', `totals: ${rows.length} scenarios, ${tot.runs} runs, ${tot.completed} completed, lost ${tot.lost}, duplicated ${tot.duplicated}, scenarios not ok ${tot.bad}`);
  } else {
    out.push('(no scenario recorded a row)');
  }
  for (const l of loads) {
    out.push('', `load: ${l.prompts} prompts, ${l.samples} samples through generate → verify → filter in ${l.seconds.toFixed(1)} s`);
    out.push(table(['process', 'peak RSS (MiB)'], Object.entries(l.peakRssMiB).map(([k, v]) => [k, v.toFixed(0)])));
    const h = l.largestHistory;
    out.push(`largest history: ${h.events} events, ${(h.bytes / 1024).toFixed(1)} KiB (${h.workflowId}, of ${l.histories} runs; Temporal's limits 51,200 events / 50 MiB, warnings at 10,240 / 10 MiB)`);
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
    const text = render(this.dir) + `\n\nchaos suite wall time: ${((Date.now() - this.started) / 1000).toFixed(0)} s (results in ${this.dir})\n`;
    process.stdout.write(text + '\n');
    if (process.env.DISTILLERY_CHAOS_TABLE) fs.writeFileSync(process.env.DISTILLERY_CHAOS_TABLE, text);
  }
}

module.exports = ChaosTableReporter;
module.exports.render = render;
