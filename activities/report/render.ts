/**
 * The report's three forms, all from one ReportData: report.json (the numbers, without the raw length lists),
 * report.md (tables, for a terminal or a PR) and report.html (self-contained: inline CSS and SVG, no script, no
 * external asset, so it opens from a file on a machine with no network).
 */
import type { Estimate } from '../evaluate/metrics';
import type { ReportData } from './collect';
import { barChart, binLengths, colorFor, esc, funnelChart, histogramChart, lineChart, type BarGroup } from './svg';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const pm = (e: Estimate) => `${pct(e.mean)} ± ${(e.stderr * 100).toFixed(1)}`;
const num = (x: number | null | undefined, digits = 0) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '—'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** report.json: everything but the per-sample length lists (their statistics stay). */
export function reportJson(d: ReportData): unknown {
  const strip = (s: ReportData['lengths']['training']) => s.map(({ values: _values, ...rest }) => rest);
  return { ...d, lengths: { training: strip(d.lengths.training), evaluation: strip(d.lengths.evaluation) } };
}

const OUTCOMES_NOTE =
  'Correct / incorrect / no answer counts samples (items × k): "no answer" is a response in which the grader found no final answer (no \\boxed{}, cut off inside <think>, empty), a format failure rather than a wrong result.';

function passKCols(d: ReportData): string[] {
  const ks = new Set<string>();
  for (const b of d.accuracy)
    for (const m of b.models) for (const k of Object.keys(m.passAtK ?? {})) if (k !== '1') ks.add(k);
  return [...ks].sort((a, b) => Number(a) - Number(b));
}

function accuracyRows(d: ReportData): { cells: string[]; model: string }[] {
  const ks = passKCols(d);
  const rows: { cells: string[]; model: string }[] = [];
  for (const b of d.accuracy) {
    for (const m of b.models) {
      rows.push({
        model: m.name,
        cells: [
          b.benchmark,
          m.name,
          pm(m.pass1),
          m.outcomes ? `${num(m.outcomes.correct)} / ${num(m.outcomes.incorrect)} / ${num(m.outcomes.noAnswer)}` : '—',
          m.consAtK ? `${pm(m.consAtK)}` : '—',
          ...ks.map((k) => (m.passAtK?.[k] ? pm(m.passAtK[k]!) : '—')),
          `${num(b.items)} × ${b.k}`,
          num(m.truncated),
          m.answerChars ? `${num(m.answerChars.mean)} / ${num(m.answerChars.median)} / ${num(m.answerChars.p90)}` : '—',
        ],
      });
    }
  }
  return rows;
}

function accuracyHeader(d: ReportData): string[] {
  const k = d.accuracy[0]?.k ?? 1;
  return [
    'benchmark',
    'model',
    'pass@1 ± s.e.',
    'correct / incorrect / no answer',
    `cons@${k}`,
    ...passKCols(d).map((x) => `pass@${x}`),
    'items × k',
    'truncated',
    'answer chars mean / median / p90',
  ];
}

function mdTable(header: string[], rows: string[][]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `| ${header.map(cell).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

export function renderMarkdown(d: ReportData): string {
  const out: string[] = [];
  out.push(
    `# Distillation report: ${d.name}`,
    '',
    `Run \`${d.runId}\` · generated ${d.generatedAt} · artifacts \`${d.runDir}\``,
    '',
  );
  if (d.gate) {
    out.push(
      `## Promotion gate: ${d.gate.promote ? '**PROMOTED**' : '**not promoted**'}`,
      '',
      ...d.gate.reasons.map((r) => `- ${r}`),
      '',
    );
    if (d.gate.pointer) out.push(`Pointer: ${d.gate.pointer.uri}`, '');
  }
  out.push('## Accuracy', '');
  if (d.accuracy.length) {
    out.push(
      mdTable(
        accuracyHeader(d),
        accuracyRows(d).map((r) => r.cells),
      ),
      '',
    );
    out.push(
      `± is one standard error of the mean across items. ${OUTCOMES_NOTE} pass@k is the unbiased estimator (Chen et al. 2021); cons@k is the majority vote over the k samples, ties counted fractionally.`,
      '',
    );
  } else out.push('No evaluation.', '');
  if (d.teacherTrain)
    out.push(
      `Teacher on the training prompts (rejection sampling, not the held-out benchmark): pass@1 ${pm(d.teacherTrain)} over ${num(d.teacherTrain.prompts)} prompts.`,
      '',
    );
  for (const b of d.accuracy) {
    const diffs = [...new Set(b.models.flatMap((m) => Object.keys(m.byDifficulty ?? {})))].sort(
      (x, y) => Number(x) - Number(y),
    );
    if (!diffs.length) continue;
    out.push(`### ${b.benchmark} by difficulty`, '');
    out.push(
      mdTable(
        ['difficulty', 'items', ...b.models.map((m) => `${m.name} pass@1`)],
        diffs.map((df) => [
          df,
          num(b.models.find((m) => m.byDifficulty?.[df])?.byDifficulty?.[df]?.items),
          ...b.models.map((m) => (m.byDifficulty?.[df] ? pm(m.byDifficulty[df]!.pass1) : '—')),
        ]),
      ),
      '',
    );
  }
  out.push('## Data funnel', '');
  if (d.funnel.length) {
    const rows: string[][] = [];
    for (const s of d.funnel) {
      rows.push([s.label, `${num(s.count)} ${s.unit}`, '']);
      for (const dr of s.drops) rows.push(['', '', `− ${dr.reason}: ${num(dr.count)}`]);
    }
    out.push(mdTable(['stage', 'count', 'dropped before the next stage'], rows), '');
  }
  if (d.acceptanceRate !== null)
    out.push(`Acceptance rate (verified correct / samples): ${pct(d.acceptanceRate)}.`, '');
  if (d.accounting.length) out.push(...d.accounting.map((a) => `- ${a.ok ? '✓' : '✗'} ${a.stage}: ${a.detail}`), '');
  out.push('## Answer lengths (characters)', '');
  const ls = [...d.lengths.training, ...d.lengths.evaluation];
  if (ls.length)
    out.push(
      mdTable(
        ['series', 'source', 'n', 'mean', 'median', 'p90', 'max'],
        ls.map((s) => [
          s.name,
          s.source,
          num(s.stats.count),
          num(s.stats.mean, 1),
          num(s.stats.median, 1),
          num(s.stats.p90, 1),
          num(s.stats.max),
        ]),
      ),
      '',
    );
  out.push('## Training', '');
  if (d.loss) {
    out.push(`${num(d.loss.steps)} steps, final loss ${d.loss.finalLoss ?? '—'} (${d.loss.source}).`, '');
    const f = d.loss.facts;
    const keys = Object.keys(f).filter((k) => typeof f[k] !== 'object');
    if (keys.length)
      out.push(
        mdTable(
          ['fact', 'value'],
          keys.map((k) => [k, String(f[k])]),
        ),
        '',
      );
  } else out.push('No training report.', '');
  if (d.fineTune) out.push(`Model: \`${d.fineTune.modelDir}\` (resumed from step ${d.fineTune.resumedFromStep}).`, '');
  if (d.warnings.length) out.push('## Warnings', '', ...d.warnings.map((w) => `- ${w}`), '');
  if (Object.keys(d.artifacts).length)
    out.push('## Artifacts', '', ...Object.entries(d.artifacts).map(([k, u]) => `- ${k}: ${u}`), '');
  return out.join('\n');
}

function htmlTable(header: string[], rows: string[][], klass = ''): string {
  return `<table class="${klass}"><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function accuracyChart(d: ReportData): string {
  if (!d.accuracy.length) return '';
  const groups: BarGroup[] = d.accuracy.map((b, bi) => ({
    label: b.benchmark,
    bars: [
      ...b.models.map((m, i) => ({
        series: m.name,
        value: m.pass1.mean,
        err: m.pass1.stderr,
        color: colorFor(m.name, i),
        label: pct(m.pass1.mean),
      })),
      ...(bi === 0 && d.teacherTrain && !b.models.some((m) => m.name === 'teacher')
        ? [
            {
              series: 'teacher† (train prompts)',
              value: d.teacherTrain.mean,
              err: d.teacherTrain.stderr,
              color: colorFor('teacher'),
              label: pct(d.teacherTrain.mean),
            },
          ]
        : []),
    ],
  }));
  return barChart({
    title: 'pass@1 (± 1 s.e.)',
    groups,
    yMax: 1,
    yLabel: 'pass@1',
    format: (v) => `${Math.round(v * 100)}%`,
    klass: 'accuracy-chart',
  });
}

function difficultyCharts(d: ReportData): string {
  let out = '';
  for (const b of d.accuracy) {
    const diffs = [...new Set(b.models.flatMap((m) => Object.keys(m.byDifficulty ?? {})))].sort(
      (x, y) => Number(x) - Number(y),
    );
    if (diffs.length < 2) continue;
    const groups: BarGroup[] = diffs.map((df) => ({
      label: `${df} (${num(b.models.find((m) => m.byDifficulty?.[df])?.byDifficulty?.[df]?.items)} items)`,
      bars: b.models
        .filter((m) => m.byDifficulty?.[df])
        .map((m, i) => ({
          series: m.name,
          value: m.byDifficulty![df]!.pass1.mean,
          err: m.byDifficulty![df]!.pass1.stderr,
          color: colorFor(m.name, i),
          label: pct(m.byDifficulty![df]!.pass1.mean),
        })),
    }));
    out += barChart({
      title: `${b.benchmark}: pass@1 by difficulty`,
      groups,
      yMax: 1,
      yLabel: 'pass@1',
      format: (v) => `${Math.round(v * 100)}%`,
      klass: 'difficulty-chart',
    });
  }
  return out;
}

const CSS = `
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px}
.meta{color:#666;font-size:13px}.note{color:#555;font-size:13px}
table{border-collapse:collapse;margin:10px 0;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f5f5f5}
td:not(:first-child){font-variant-numeric:tabular-nums}
.gate{padding:10px 14px;border-radius:6px;margin:14px 0}.gate.yes{background:#e7f6ec;border:1px solid #2da44e}.gate.no{background:#fff4e5;border:1px solid #d4a72c}
.ok{color:#1a7f37}.bad{color:#cf222e}.warn{background:#fff8c5;padding:8px 12px;border-radius:6px}
svg.chart{display:block;margin:12px 0;max-width:100%;height:auto}
code{background:#f5f5f5;padding:1px 4px;border-radius:3px}
`;

export function renderHtml(d: ReportData): string {
  const parts: string[] = [];
  parts.push(`<h1>Distillation report: ${esc(d.name)}</h1>`);
  parts.push(
    `<p class="meta">Run <code>${esc(d.runId)}</code> · generated ${esc(d.generatedAt)} · artifacts <code>${esc(d.runDir)}</code></p>`,
  );
  if (d.gate) {
    parts.push(
      `<div class="gate ${d.gate.promote ? 'yes' : 'no'}"><strong>Promotion gate: ${d.gate.promote ? 'promoted' : 'not promoted'}</strong><ul>${d.gate.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>${d.gate.pointer ? `<p class="note">Pointer: <code>${esc(d.gate.pointer.uri)}</code></p>` : ''}</div>`,
    );
  }
  parts.push('<h2 id="accuracy">Accuracy</h2>');
  if (d.accuracy.length) {
    parts.push(accuracyChart(d));
    parts.push(
      htmlTable(
        accuracyHeader(d),
        accuracyRows(d).map((r) => r.cells),
        'accuracy',
      ),
    );
    parts.push(
      `<p class="note">± and error bars: one standard error of the mean across items. ${esc(OUTCOMES_NOTE)} pass@k: unbiased estimator (Chen et al. 2021). cons@k: majority vote over the k samples, ties counted fractionally.</p>`,
    );
    if (d.teacherTrain)
      parts.push(
        `<p class="note">† Teacher: pass@1 of its samples on the <em>training</em> prompts (rejection sampling), ${esc(pm(d.teacherTrain))} over ${esc(num(d.teacherTrain.prompts))} prompts; not scored on the held-out benchmark.</p>`,
      );
    parts.push(difficultyCharts(d));
  } else parts.push('<p>No evaluation.</p>');
  parts.push('<h2 id="funnel">Data funnel</h2>');
  if (d.funnel.length)
    parts.push(
      funnelChart({
        title: 'From prompts to training examples',
        rows: d.funnel.map((s) => ({ label: s.label, count: s.count, unit: s.unit, drops: s.drops })),
      }),
    );
  if (d.acceptanceRate !== null)
    parts.push(`<p>Acceptance rate (verified correct / samples): <strong>${esc(pct(d.acceptanceRate))}</strong>.</p>`);
  if (d.accounting.length)
    parts.push(
      `<ul class="accounting">${d.accounting.map((a) => `<li class="${a.ok ? 'ok' : 'bad'}">${a.ok ? '✓' : '✗'} ${esc(a.stage)}: ${esc(a.detail)}</li>`).join('')}</ul>`,
    );
  if (d.mixture) parts.push(...mixtureSection(d.mixture));
  parts.push('<h2 id="lengths">Answer lengths</h2>');
  if (d.lengths.training.length)
    parts.push(
      histogramChart({
        title: 'Training data: length of teacher samples and kept examples',
        hist: { ...binLengths(d.lengths.training.map((s) => ({ name: s.name, values: s.values }))) },
        xLabel: 'characters',
        klass: 'histogram training-lengths',
      }),
    );
  if (d.lengths.evaluation.length)
    parts.push(
      histogramChart({
        title: `Evaluation answers: length on ${d.accuracy[0]?.benchmark ?? 'the benchmark'}`,
        hist: binLengths(d.lengths.evaluation.map((s) => ({ name: s.name, values: s.values }))),
        xLabel: 'characters',
        klass: 'histogram eval-lengths',
      }),
    );
  const ls = [...d.lengths.training, ...d.lengths.evaluation];
  if (ls.length)
    parts.push(
      htmlTable(
        ['series', 'source', 'n', 'mean', 'median', 'p90', 'max'],
        ls.map((s) => [
          s.name,
          s.source,
          num(s.stats.count),
          num(s.stats.mean, 1),
          num(s.stats.median, 1),
          num(s.stats.p90, 1),
          num(s.stats.max),
        ]),
        'lengths',
      ),
    );
  parts.push('<h2 id="training">Training</h2>');
  if (d.loss && d.loss.points.length) {
    const wide =
      Math.max(...d.loss.points.map((p) => p.loss)) / Math.max(1e-12, Math.min(...d.loss.points.map((p) => p.loss))) >
      20;
    parts.push(
      lineChart({
        title: 'Training loss',
        series: [
          {
            name: 'loss per step',
            points: d.loss.points.map((p) => ({ x: p.step, y: p.loss })),
            color: '#9ec5fe',
            width: 1.2,
          },
          {
            name: 'smoothed',
            points: d.loss.smoothed.map((p) => ({ x: p.step, y: p.loss })),
            color: '#0b3d91',
            width: 2.4,
          },
        ],
        xLabel: 'step',
        yLabel: 'loss (nats/token)',
        logY: wide,
        klass: 'loss-chart',
      }),
    );
    const f = d.loss.facts;
    const keys = Object.keys(f).filter((k) => typeof f[k] !== 'object');
    if (keys.length)
      parts.push(
        htmlTable(
          ['fact', 'value'],
          keys.map((k) => [k, String(f[k])]),
          'facts',
        ),
      );
  } else parts.push('<p>No training loss recorded.</p>');
  if (d.fineTune)
    parts.push(
      `<p class="note">Model: <code>${esc(d.fineTune.modelDir)}</code> (resumed from step ${esc(d.fineTune.resumedFromStep)}).</p>`,
    );
  if (d.warnings.length)
    parts.push(
      `<h2>Warnings</h2><div class="warn"><ul>${d.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`,
    );
  if (Object.keys(d.artifacts).length)
    parts.push(
      `<h2>Artifacts</h2><ul class="note">${Object.entries(d.artifacts)
        .map(([k, u]) => `<li>${esc(k)}: <code>${esc(u)}</code></li>`)
        .join('')}</ul>`,
    );
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(`Distillation report: ${d.name}`)}</title><style>${CSS}</style></head><body>\n${parts.join('\n')}\n</body></html>\n`;
}

/** A mixture run's sources: the achieved mix next to the target, and each source's funnel (in = kept + rejected). */
function mixtureSection(m: NonNullable<ReportData['mixture']>): string[] {
  const share = (x: number) => `${(100 * x).toFixed(1)}%`;
  const mix = m.sources.map((s) => [
    s.name,
    s.kind,
    share(s.mix.targetShare),
    share(s.mix.achievedShare),
    String(s.mix.final),
    String(s.mix.dropped),
    String(s.mix.repeats),
  ]);
  const funnel = m.sources.flatMap((s) => [
    [s.name, 'prepare', String(s.prepare.in), String(s.prepare.kept), String(s.prepare.quarantined)],
    [s.name, 'verify', String(s.verify.in), String(s.verify.kept), String(s.verify.rejected)],
    [s.name, 'filter', String(s.filter.in), String(s.filter.kept), String(s.filter.rejected)],
    [s.name, 'mix', String(s.mix.available), String(s.mix.final), String(s.mix.dropped)],
  ]);
  return [
    '<h2 id="sources">Sources</h2>',
    `<p>${m.sftRows} training rows mixed from ${m.sources.length} sources (seed ${m.seed}).</p>`,
    htmlTable(['source', 'kind', 'target share', 'achieved share', 'rows', 'downsampled', 'repeated'], mix, 'mixture'),
    htmlTable(['source', 'stage', 'in', 'kept', 'rejected'], funnel, 'source-funnel'),
  ];
}
