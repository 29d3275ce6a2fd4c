/**
 * The dataset card: what went in, what each filter dropped and why, what came out (length histogram, scripts and
 * languages), where the samples came from (teacher, sampling settings, fingerprints, tokens), and the run spec.
 * Written as JSON (for tools) and Markdown (for people) beside the SFT file. Memory stays flat: counters, plus one
 * int per kept sample for exact length percentiles.
 */
import { renderMixtureMarkdown, type SourceFunnel } from './source-funnel';
import type { SampleRow } from '../../schemas/artifact';
import { HashSet64 } from './minhash';
import { hash53 } from './text';
import type { AdaptiveSamplingSummary } from '../generate/sampling-summary';

export interface StepStats {
  name: string;
  enabled: boolean;
  in: number;
  dropped: number;
  out: number;
  reasons: Record<string, number>;
  /** Time spent in this step, milliseconds. */
  ms: number;
}

export interface LengthStats {
  tokenizer: string;
  exact: boolean;
  /** Completion tokens of kept samples. */
  completion: { mean: number; p50: number; p90: number; p99: number; max: number; min: number };
  /** Prompt + completion tokens of kept samples. */
  total: { mean: number; max: number };
  /** Power-of-two bins of completion tokens: `[lo, hi)` → count. */
  histogram: { lo: number; hi: number; count: number }[];
}

export interface Provenance {
  teachers: Record<string, number>;
  systemFingerprints: Record<string, number>;
  sampling: { temperature: number; top_p: number; max_tokens: number; seed: number; samples: number }[];
  configHashes: Record<string, number>;
  finishReasons: Record<string, number>;
  usage: { promptTokens: number; completionTokens: number };
  prompts: number;
}

export interface DatasetCard {
  title: string;
  createdAt: string;
  format: string;
  files: Record<string, { uri: string; sha256: string; count: number } | undefined>;
  counts: { in: number; kept: number; rejected: number };
  reasons: Record<string, number>;
  steps: StepStats[];
  length: LengthStats;
  language: { scripts: Record<string, number>; languages: Record<string, number> };
  provenance: { kept: Provenance; input: Pick<Provenance, 'teachers' | 'usage' | 'prompts'> };
  dedup?: unknown;
  decontamination?: unknown;
  difficulty?: unknown;
  filters: unknown;
  spec?: unknown;
  /** Building the indexes (benchmarks, earlier datasets, tokenizer), and the whole stage, in ms. */
  timing?: { setupMs: number; totalMs: number };
  /** A mixture of sources: each one's funnel and its target vs achieved share of the SFT set. */
  mixture?: { seed: number; total?: number; sftRows: number; sources: SourceFunnel[] };
  /** Adaptive sampling: samples drawn per prompt and why each prompt's sampling stopped. */
  adaptiveSampling?: AdaptiveSamplingSummary;
}

const MAX_DISTINCT = 50;

function bump(rec: Record<string, number>, key: string, by = 1): void {
  if (key in rec || Object.keys(rec).length < MAX_DISTINCT) rec[key] = (rec[key] ?? 0) + by;
  else rec['(other)'] = (rec['(other)'] ?? 0) + by;
}

function emptyProvenance(): Provenance {
  return {
    teachers: {},
    systemFingerprints: {},
    sampling: [],
    configHashes: {},
    finishReasons: {},
    usage: { promptTokens: 0, completionTokens: 0 },
    prompts: 0,
  };
}

export class CardBuilder {
  readonly steps: StepStats[] = [];
  private lengths = new Int32Array(1024);
  private kept = 0;
  private totalSum = 0;
  private totalMax = 0;
  private readonly scripts: Record<string, number> = {};
  private readonly languages: Record<string, number> = {};
  private readonly keptProv = emptyProvenance();
  private readonly inputProv = emptyProvenance();
  /** Distinct prompt ids, as 64-bit hashes (flat memory). */
  private readonly keptPrompts = new HashSet64();
  private readonly inputPrompts = new HashSet64();
  private readonly samplingKeys = new Map<string, number>();

  step(name: string, enabled: boolean): StepStats {
    const s: StepStats = { name, enabled, in: 0, dropped: 0, out: 0, reasons: {}, ms: 0 };
    this.steps.push(s);
    return s;
  }

  input(s: SampleRow): void {
    bump(this.inputProv.teachers, s.teacher?.model ?? '(unknown)');
    this.inputProv.usage.promptTokens += s.usage?.promptTokens ?? 0;
    this.inputProv.usage.completionTokens += s.usage?.completionTokens ?? 0;
    if (s.promptId) this.inputPrompts.add(hash53(s.promptId, 1), hash53(s.promptId, 2));
  }

  keep(
    s: SampleRow,
    tokens: { completion: number; total: number },
    script: string | null,
    language: string | null,
  ): void {
    if (this.kept === this.lengths.length) {
      const b = new Int32Array(this.lengths.length * 2);
      b.set(this.lengths);
      this.lengths = b;
    }
    this.lengths[this.kept++] = tokens.completion;
    this.totalSum += tokens.total;
    this.totalMax = Math.max(this.totalMax, tokens.total);
    bump(this.scripts, script ?? '(none)');
    if (language) bump(this.languages, language);
    const p = this.keptProv;
    bump(p.teachers, s.teacher?.model ?? '(unknown)');
    if (s.teacher?.systemFingerprint) bump(p.systemFingerprints, s.teacher.systemFingerprint);
    bump(p.configHashes, s.configHash ?? '(none)');
    bump(p.finishReasons, s.finishReason ?? '(null)');
    p.usage.promptTokens += s.usage?.promptTokens ?? 0;
    p.usage.completionTokens += s.usage?.completionTokens ?? 0;
    if (s.promptId) this.keptPrompts.add(hash53(s.promptId, 1), hash53(s.promptId, 2));
    if (s.sampling) {
      const key = `${s.sampling.temperature}|${s.sampling.top_p}|${s.sampling.max_tokens}|${s.sampling.seed}`;
      const i = this.samplingKeys.get(key);
      if (i !== undefined) p.sampling[i]!.samples += 1;
      else if (p.sampling.length < MAX_DISTINCT) {
        this.samplingKeys.set(key, p.sampling.length);
        p.sampling.push({ ...s.sampling, samples: 1 });
      }
    }
  }

  private lengthStats(tokenizer: string, exact: boolean): LengthStats {
    const v = this.lengths.subarray(0, this.kept).slice().sort();
    const n = v.length;
    const q = (f: number) => (n ? v[Math.min(n - 1, Math.floor(f * n))]! : 0);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += v[i]!;
    const histogram: LengthStats['histogram'] = [];
    if (n) {
      let lo = 0;
      let hi = 64;
      while (lo <= v[n - 1]!) {
        let count = 0;
        for (let i = 0; i < n; i++) if (v[i]! >= lo && v[i]! < hi) count++;
        histogram.push({ lo, hi, count });
        lo = hi;
        hi *= 2;
      }
    }
    return {
      tokenizer,
      exact,
      completion: {
        mean: n ? sum / n : 0,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: n ? v[n - 1]! : 0,
        min: n ? v[0]! : 0,
      },
      total: { mean: n ? this.totalSum / n : 0, max: this.totalMax },
      histogram,
    };
  }

  build(args: {
    title: string;
    files: DatasetCard['files'];
    counts: DatasetCard['counts'];
    reasons: Record<string, number>;
    tokenizer: { name: string; exact: boolean };
    dedup?: unknown;
    decontamination?: unknown;
    difficulty?: unknown;
    filters: unknown;
    spec?: unknown;
    timing?: DatasetCard['timing'];
    mixture?: DatasetCard['mixture'];
    adaptiveSampling?: AdaptiveSamplingSummary;
  }): DatasetCard {
    this.keptProv.prompts = this.keptPrompts.size;
    return {
      title: args.title,
      createdAt: new Date().toISOString(),
      format:
        'OpenAI chat messages (JSONL: {id, messages: [{role: user}, {role: assistant, content: "<think>\\n…\\n</think>\\n…"}]})',
      files: args.files,
      counts: args.counts,
      reasons: args.reasons,
      steps: this.steps,
      length: this.lengthStats(args.tokenizer.name, args.tokenizer.exact),
      language: { scripts: this.scripts, languages: this.languages },
      provenance: {
        kept: this.keptProv,
        input: { teachers: this.inputProv.teachers, usage: this.inputProv.usage, prompts: this.inputPrompts.size },
      },
      dedup: args.dedup,
      decontamination: args.decontamination,
      difficulty: args.difficulty,
      filters: args.filters,
      spec: args.spec,
      timing: args.timing,
      ...(args.mixture ? { mixture: args.mixture } : {}),
      ...(args.adaptiveSampling ? { adaptiveSampling: args.adaptiveSampling } : {}),
    };
  }
}

function renderAdaptiveMarkdown(a: AdaptiveSamplingSummary): string {
  const per = Object.entries(a.drawnPerPrompt).sort(([x], [y]) => Number(x) - Number(y));
  return [
    '## Adaptive sampling',
    '',
    `${a.prompts} prompts drew ${a.drawn} samples (${a.prompts ? (a.drawn / a.prompts).toFixed(2) : '–'} per prompt), ${a.accepted} of them correct, ${a.completionTokens} teacher completion tokens. Sampling stopped at the target for ${a.stopped.target} prompts, at maxSamples for ${a.stopped.max_samples}, given up for ${a.stopped.gave_up}${a.stopped.budget ? `, stopped by the budget for ${a.stopped.budget}` : ''}. Per prompt: ${a.files.join(', ')}.`,
    '',
    table(['samples drawn', 'prompts'], per),
    '',
  ].join('\n');
}

const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '–');

function table(head: string[], rows: (string | number)[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export function renderCardMarkdown(c: DatasetCard): string {
  const out: string[] = [];
  out.push(`# ${c.title}`, '');
  out.push(`Created ${c.createdAt}. Format: ${c.format}.`, '');
  out.push(
    `**${c.counts.kept}** of ${c.counts.in} samples kept (${pct(c.counts.kept, c.counts.in)}); ${c.counts.rejected} rejected, each with its reason in the rejects file.`,
    '',
  );
  if (c.timing)
    out.push(
      `Filtered in ${(c.timing.totalMs / 1000).toFixed(1)} s (${(c.timing.setupMs / 1000).toFixed(1)} s building the indexes).`,
      '',
    );
  if (c.mixture) out.push(renderMixtureMarkdown(c.mixture));
  if (c.adaptiveSampling) out.push(renderAdaptiveMarkdown(c.adaptiveSampling));
  out.push('## Files', '');
  out.push(
    table(
      ['file', 'rows', 'sha256'],
      Object.entries(c.files)
        .filter(([, f]) => f)
        .map(([k, f]) => [`\`${k}\` ${f!.uri}`, f!.count, `\`${f!.sha256.slice(0, 16)}…\``]),
    ),
    '',
  );
  out.push('## Filters, in order', '');
  out.push(
    table(
      ['step', 'in', 'dropped', 'out', 'reasons', 'ms'],
      c.steps.map((s) => [
        s.enabled ? s.name : `${s.name} (off)`,
        s.in,
        s.dropped,
        s.out,
        Object.entries(s.reasons)
          .map(([r, n]) => `${r}: ${n}`)
          .join(', ') || '–',
        Math.round(s.ms),
      ]),
    ),
    '',
  );
  const l = c.length;
  out.push('## Length', '');
  out.push(
    `Completion tokens (${l.exact ? 'exact' : 'estimated'}, ${l.tokenizer}): mean ${l.completion.mean.toFixed(1)}, median ${l.completion.p50}, p90 ${l.completion.p90}, p99 ${l.completion.p99}, min ${l.completion.min}, max ${l.completion.max}. Prompt + completion: mean ${l.total.mean.toFixed(1)}, max ${l.total.max}.`,
    '',
  );
  const maxCount = Math.max(1, ...l.histogram.map((h) => h.count));
  out.push(
    table(
      ['completion tokens', 'samples', ''],
      l.histogram.map((h) => [`${h.lo}–${h.hi - 1}`, h.count, '█'.repeat(Math.round((20 * h.count) / maxCount))]),
    ),
    '',
  );
  out.push('## Language', '');
  out.push(
    table(
      ['main script of the answer', 'samples'],
      Object.entries(c.language.scripts).map(([k, v]) => [k, v]),
    ),
    '',
  );
  if (Object.keys(c.language.languages).length)
    out.push(
      table(
        ['identified language (tinyld)', 'samples'],
        Object.entries(c.language.languages).map(([k, v]) => [k, v]),
      ),
      '',
    );
  const p = c.provenance.kept;
  out.push('## Provenance (kept samples)', '');
  out.push(
    `${p.prompts} prompts (of ${c.provenance.input.prompts} in the input). Teacher tokens of kept samples: ${p.usage.promptTokens} prompt, ${p.usage.completionTokens} completion (all input: ${c.provenance.input.usage.promptTokens} / ${c.provenance.input.usage.completionTokens}).`,
    '',
  );
  out.push(
    table(
      ['teacher model', 'samples'],
      Object.entries(p.teachers).map(([k, v]) => [k, v]),
    ),
    '',
  );
  if (Object.keys(p.systemFingerprints).length)
    out.push(
      table(
        ['system fingerprint', 'samples'],
        Object.entries(p.systemFingerprints).map(([k, v]) => [k, v]),
      ),
      '',
    );
  out.push(
    table(
      ['temperature', 'top_p', 'max_tokens', 'seed', 'samples'],
      p.sampling.map((s) => [s.temperature, s.top_p, s.max_tokens, s.seed, s.samples]),
    ),
    '',
  );
  out.push(
    table(
      ['config hash', 'samples'],
      Object.entries(p.configHashes).map(([k, v]) => [`\`${k}\``, v]),
    ),
    '',
  );
  out.push(
    table(
      ['finish reason', 'samples'],
      Object.entries(p.finishReasons).map(([k, v]) => [k, v]),
    ),
    '',
  );
  for (const [title, v] of [
    ['Deduplication', c.dedup],
    ['Decontamination', c.decontamination],
    ['Difficulty', c.difficulty],
    ['Filter settings', c.filters],
    ['Run spec', c.spec],
  ] as const) {
    if (v === undefined) continue;
    out.push(`## ${title}`, '', '```json', JSON.stringify(v, null, 2), '```', '');
  }
  return out.join('\n');
}
