/**
 * The report from a run's artifacts: report.json / report.md / report.html, and the HTML rendered by headless
 * Chromium (Debian package `chromium`): the DOM it builds holds the charts' marks with real sizes, and its screenshot
 * shows them (pixels of each chart's colours are counted in the decoded PNG). Skips the browser half, saying so, only
 * when no Chromium is installed (DISTILLERY_CHROMIUM names another binary).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { pathOf } from '../../activities/artifacts/store';
import { writeReport } from '../../activities/report/report';
import { binLengths, niceTicks } from '../../activities/report/svg';
import { downsample } from '../../activities/report/collect';
import type { ReportSummary } from '../../activities/report/collect';
import type { RunSummary } from '../../workflows/distillation';
import { makeRunFixture, type RunFixture } from './run-fixture';
import { requires } from '../helpers/prerequisites';

/** The workflow's RunSummary is a ReportSummary (checked by the compiler): the workflow passes its own. */
export const runSummaryIsReportSummary = (s: RunSummary): ReportSummary => s;

function findChromium(): string | null {
  const candidates = [
    process.env.DISTILLERY_CHROMIUM,
    'chromium',
    'chromium-browser',
    'google-chrome',
    'google-chrome-stable',
  ].filter(Boolean) as string[];
  for (const c of candidates) {
    try {
      const p = execFileSync('sh', ['-c', `command -v "${c}"`], { encoding: 'utf8' }).trim();
      if (p) return p;
    } catch {
      /* not this one */
    }
  }
  return null;
}

const chromium = findChromium();
const withChromium = requires(
  'headless Chromium',
  chromium
    ? null
    : 'no chromium on PATH (Debian: `apt-get install -y --no-install-recommends chromium fonts-dejavu-core`; .ci/run installs it)',
);

function runChromium(args: string[], userDataDir: string): string {
  const r = spawnSync(
    chromium!,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--hide-scrollbars',
      '--force-device-scale-factor=1',
      `--user-data-dir=${userDataDir}`,
      ...args,
    ],
    { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`chromium exited ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** Minimal PNG decoder (8-bit RGB/RGBA, not interlaced: what Chromium writes) → RGBA pixels. */
function decodePng(buf: Buffer): { width: number; height: number; rgba: Buffer } {
  expect(buf.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))).toBe(true);
  let off = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8]).toBe(8); // bit depth
      colorType = data[9]!;
      expect(data[12]).toBe(0); // no interlace
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : colorType === 2 ? 3 : 0;
  expect(bpp).toBeGreaterThan(0);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const out = Buffer.alloc(width * height * 4);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? line[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let v = line[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      line[i] = v & 0xff;
    }
    for (let x = 0; x < width; x++) {
      out[(y * width + x) * 4] = line[x * bpp]!;
      out[(y * width + x) * 4 + 1] = line[x * bpp + 1]!;
      out[(y * width + x) * 4 + 2] = line[x * bpp + 2]!;
      out[(y * width + x) * 4 + 3] = bpp === 4 ? line[x * bpp + 3]! : 255;
    }
    prev = line;
  }
  return { width, height, rgba: out };
}

function countColor(img: { rgba: Buffer }, hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < img.rgba.length; i += 4)
    if (img.rgba[i] === r && img.rgba[i + 1] === g && img.rgba[i + 2] === b) n++;
  return n;
}

/** The attributes of every <tag …> in `html` whose attributes match `filter`. */
function elements(html: string, tag: string, filter: RegExp): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const m of html.matchAll(new RegExp(`<${tag}\\b([^>]*)>`, 'g'))) {
    if (!filter.test(m[1]!)) continue;
    out.push(Object.fromEntries([...m[1]!.matchAll(/([\w:-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!])));
  }
  return out;
}

describe('writeReport', () => {
  let fx: RunFixture;
  let out: Awaited<ReturnType<typeof writeReport>>;
  beforeAll(async () => {
    fx = await makeRunFixture();
    out = await writeReport({ runDir: fx.runDir, summary: fx.summary, generatedAt: '2025-06-01T12:00:00.000Z' });
  });
  afterAll(() => fs.rmSync(fx.runDir, { recursive: true, force: true }));

  test('writes report.json, report.md and report.html under <runDir>/report, with honest refs', () => {
    for (const [name, ref] of Object.entries(out)) {
      const file = pathOf(ref);
      expect(file).toBe(path.join(fx.runDir, 'report', `report.${name}`));
      expect(ref.sha256).toBe(createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    }
    expect(fs.readdirSync(path.join(fx.runDir, 'report')).sort()).toEqual(['report.html', 'report.json', 'report.md']);
  });

  test('report.json: accuracy, funnel with drop reasons, lengths, loss curve', () => {
    const j = JSON.parse(fs.readFileSync(pathOf(out.json), 'utf8'));
    const e = fx.expected;
    expect(j.runId).toBe('report-fixture-1');
    expect(j.generatedAt).toBe('2025-06-01T12:00:00.000Z');
    expect(j.warnings).toEqual([]);
    const acc = j.accuracy[0];
    expect(acc.benchmark).toBe('arithmetic-2digit-heldout');
    expect(acc.k).toBe(4);
    expect(acc.models.map((m: { name: string; pass1: { mean: number } }) => [m.name, m.pass1.mean])).toEqual([
      ['baseline', e.pass1.baseline],
      ['student', e.pass1.student],
    ]);
    expect(Object.keys(acc.models[1].passAtK)).toEqual(['1', '2', '4']);
    expect(Object.keys(acc.models[1].byDifficulty)).toEqual(['0', '1', '2']);
    // samples by outcome, per model: the baseline's format failures (no answer found) are not lumped with wrong answers
    expect(
      Object.fromEntries(acc.models.map((m: { name: string; outcomes: unknown }) => [m.name, m.outcomes])),
    ).toEqual(e.outcomes);
    expect(e.outcomes.baseline!.noAnswer).toBeGreaterThan(0);
    expect(j.teacherTrain.prompts).toBe(e.prompts);
    const reasons = (drops: { reason: string; count: number }[]) =>
      Object.fromEntries(drops.map((d) => [d.reason, d.count]));
    expect(j.funnel.map((s: { stage: string; count: number }) => [s.stage, s.count])).toEqual([
      ['prepare.in', e.rowsIn],
      ['prepare.kept', e.prompts],
      ['generate', e.samples],
      ['verify', e.accepted],
      ['filter', e.sft],
    ]);
    expect(reasons(j.funnel[0].drops)).toEqual(e.quarantine);
    expect(reasons(j.funnel[2].drops)).toEqual(e.verifyReasons);
    expect(reasons(j.funnel[3].drops)).toEqual(e.filterReasons);
    expect(j.accounting.every((a: { ok: boolean }) => a.ok)).toBe(true);
    expect(j.lengths.training.map((s: { name: string; stats: { count: number } }) => [s.name, s.stats.count])).toEqual([
      ['teacher samples', e.samples],
      ['SFT examples', e.sft],
    ]);
    expect(j.lengths.evaluation.map((s: { name: string }) => s.name)).toEqual(['baseline', 'student']);
    expect(j.lengths.training[0].values).toBeUndefined(); // raw lists stay out of the JSON
    expect(j.loss.points).toHaveLength(e.lossSteps);
    expect(j.loss.steps).toBe(e.lossSteps);
  });

  test('report.md: the tables', () => {
    const md = fs.readFileSync(pathOf(out.md), 'utf8');
    expect(md).toContain('# Distillation report: report-fixture');
    expect(md).toMatch(/\| arithmetic-2digit-heldout \| student \| \d+\.\d% ± \d+\.\d \|/);
    for (const [m, o] of Object.entries(fx.expected.outcomes))
      expect(md).toMatch(new RegExp(`\\| ${m} \\| [^|]+ \\| ${o.correct} / ${o.incorrect} / ${o.noAnswer} \\|`));
    expect(md).toContain('correct / incorrect / no answer');
    expect(md).toContain(`| teacher samples | ${fx.expected.samples} samples |  |`);
    expect(md).toContain(`− incorrect: ${fx.expected.verifyReasons.incorrect}`);
    expect(md).toContain('### arithmetic-2digit-heldout by difficulty');
  });

  test('report.html is self-contained: no script, no external or linked asset', () => {
    const html = fs.readFileSync(pathOf(out.html), 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/\b(?:src|href)\s*=/i);
    expect(html).not.toMatch(/url\(|@import/i);
    // the only URL is the SVG namespace (an identifier, never fetched)
    expect(
      [...html.matchAll(/https?:\/\/[^\s"'<)]+/g)].map((m) => m[0]).filter((u) => u !== 'http://www.w3.org/2000/svg'),
    ).toEqual([]);
    expect(html.match(/<svg\b/g)!.length).toBe(6); // accuracy, by difficulty, funnel, 2 histograms, loss
  });

  withChromium.test('headless Chromium draws the charts (DOM and pixels)', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'report-chromium-'));
    try {
      const url = `file://${pathOf(out.html)}`;
      const dom = runChromium(['--dump-dom', url], path.join(tmp, 'profile-dom'));
      // the parsed DOM holds every chart, with marks of real size
      expect(dom.match(/<svg\b/g)!.length).toBe(6);
      const bars = elements(dom, 'rect', /class="bar"/);
      const studentBars = bars.filter((b) => b['data-series'] === 'student' && Number(b.height) > 0);
      expect(studentBars.length).toBeGreaterThanOrEqual(4); // overall + 3 difficulties
      expect(bars.filter((b) => b['data-series'] === 'teacher† (train prompts)' && Number(b.height) > 0)).toHaveLength(
        1,
      );
      expect(elements(dom, 'g', /class="errorbar"/).length).toBeGreaterThanOrEqual(4);
      const funnel = elements(dom, 'rect', /class="funnel-bar"/);
      expect(funnel.map((b) => Number(b['data-value']))).toEqual([
        fx.expected.rowsIn,
        fx.expected.prompts,
        fx.expected.samples,
        fx.expected.accepted,
        fx.expected.sft,
      ]);
      expect(funnel.every((b) => Number(b.width) > 0)).toBe(true);
      expect(
        elements(dom, 'rect', /class="drop-bar"/)
          .map((b) => b['data-reason'])
          .sort(),
      ).toEqual(
        [
          ...Object.keys(fx.expected.quarantine),
          ...Object.keys(fx.expected.verifyReasons),
          ...Object.keys(fx.expected.filterReasons),
        ].sort(),
      );
      expect(elements(dom, 'rect', /class="hist-bar"/).filter((b) => Number(b.height) > 0).length).toBeGreaterThan(10);
      const lines = elements(dom, 'path', /class="line"/);
      expect(lines.map((l) => l['data-series'])).toEqual(['loss per step', 'smoothed']);
      expect(lines.every((l) => (l.d!.match(/L/g) ?? []).length === fx.expected.lossSteps - 1)).toBe(true);

      const png = path.join(tmp, 'report.png');
      runChromium([`--screenshot=${png}`, '--window-size=1200,4200', url], path.join(tmp, 'profile-shot'));
      const buf = fs.readFileSync(png);
      expect(buf.length).toBeGreaterThan(30_000); // a blank page of this size compresses to a few kB
      const img = decodePng(buf);
      expect([img.width, img.height]).toEqual([1200, 4200]);
      let nonWhite = 0;
      for (let i = 0; i < img.rgba.length; i += 4)
        if (img.rgba[i]! < 245 || img.rgba[i + 1]! < 245 || img.rgba[i + 2]! < 245) nonWhite++;
      expect(nonWhite / (img.width * img.height)).toBeGreaterThan(0.03);
      // each chart's colour is on screen: student bars (blue), baseline (grey), teacher (orange), drops (red),
      // the smoothed loss line (navy)
      const px = {
        student: countColor(img, '#1f6feb'),
        baseline: countColor(img, '#8c8c8c'),
        teacher: countColor(img, '#e8871e'),
        drops: countColor(img, '#d92d20'),
        loss: countColor(img, '#0b3d91'),
      };
      expect(px.student).toBeGreaterThan(5000);
      expect(px.baseline).toBeGreaterThan(300);
      expect(px.teacher).toBeGreaterThan(1000);
      expect(px.drops).toBeGreaterThan(300);
      expect(px.loss).toBeGreaterThan(200);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('report from partial or older runs', () => {
  test('an evaluate/summary.json from before metrics: pass@k, cons@k and difficulty recomputed from results.jsonl', async () => {
    const fx = await makeRunFixture({ legacy: true });
    try {
      const out = await writeReport({ runDir: fx.runDir, summary: fx.summary });
      const j = JSON.parse(fs.readFileSync(pathOf(out.json), 'utf8'));
      const student = j.accuracy[0].models[1];
      expect(student.pass1.mean).toBe(fx.expected.pass1.student);
      expect(Object.keys(student.passAtK)).toEqual(['1', '2', '4']);
      expect(student.passAtK['1'].mean).toBeCloseTo(fx.expected.pass1.student, 12);
      // the ids of the builtin task name the problem: difficulty comes back
      expect(Object.keys(student.byDifficulty)).toEqual(['0', '1', '2']);
      // and the outcomes are counted from the rows
      expect(j.accuracy[0].models.map((m: { outcomes: unknown }) => m.outcomes)).toEqual([
        fx.expected.outcomes.baseline,
        fx.expected.outcomes.student,
      ]);
    } finally {
      fs.rmSync(fx.runDir, { recursive: true, force: true });
    }
  });

  test('missing artifacts leave their sections out with a warning', async () => {
    const fx = await makeRunFixture();
    try {
      fs.rmSync(path.join(fx.runDir, 'finetune'), { recursive: true });
      fs.rmSync(path.join(fx.runDir, 'evaluate', 'results.jsonl'));
      const out = await writeReport({ runDir: fx.runDir, summary: { ...fx.summary, artifacts: {} } });
      const j = JSON.parse(fs.readFileSync(pathOf(out.json), 'utf8'));
      expect(j.loss).toBeNull();
      expect(j.lengths.evaluation).toEqual([]);
      expect(j.warnings.join('\n')).toMatch(/no training report/);
      expect(j.warnings.join('\n')).toMatch(/no per-sample results/);
      const html = fs.readFileSync(pathOf(out.html), 'utf8');
      expect(html).toContain('No training loss recorded.');
      expect(html.match(/<svg\b/g)!.length).toBe(4);
    } finally {
      fs.rmSync(fx.runDir, { recursive: true, force: true });
    }
  });

  test('the gate decision is shown when the summary has one', async () => {
    const fx = await makeRunFixture();
    try {
      const gate = {
        promote: true,
        reasons: ['promote: every check passed', 'PASS arith: 10.00% → 70.00% (+60.00 pts), needs ≥ +5.00 pts'],
        checks: [],
        pointer: null,
      };
      const out = await writeReport({ runDir: fx.runDir, summary: { ...fx.summary, gate } });
      expect(fs.readFileSync(pathOf(out.md), 'utf8')).toContain('## Promotion gate: **PROMOTED**');
      expect(fs.readFileSync(pathOf(out.html), 'utf8')).toContain(
        'PASS arith: 10.00% → 70.00% (+60.00 pts), needs ≥ +5.00 pts',
      );
    } finally {
      fs.rmSync(fx.runDir, { recursive: true, force: true });
    }
  });
});

describe('chart helpers', () => {
  test('niceTicks', () => {
    expect(niceTicks(1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.37, 4)).toEqual([0, 0.1, 0.2, 0.3, 0.4]);
    expect(niceTicks(752, 6)).toEqual([0, 200, 400, 600, 800]);
  });

  test('binLengths: shared bins up to the p99, the rest in the last bin', () => {
    const h = binLengths([{ name: 'a', values: [0, 5, 9, 10, 19, 1000] }], 2);
    // p99 of 6 values is the value at index ⌊0.99·5⌋ = 4 → 19; step ⌈19/2⌉ = 10; bins [0,10) [10,∞)
    expect(h.edges).toEqual([0, 10, 20]);
    expect(h.series[0]!.counts).toEqual([3, 3]);
    expect(h.overflow).toBe(true);
  });

  test('downsample keeps at most 600 points, bucket means', () => {
    const pts = Array.from({ length: 1200 }, (_, i) => ({ step: i + 1, loss: i % 2 }));
    const d = downsample(pts);
    expect(d).toHaveLength(600);
    expect(d[0]).toEqual({ step: 2, loss: 0.5 });
    expect(downsample(pts.slice(0, 10))).toHaveLength(10);
  });
});
