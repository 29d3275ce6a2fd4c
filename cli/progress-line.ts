import type { RunProgress } from '../workflows/messages';

const STAGES = ['prepare', 'generate', 'verify', 'filter', 'finetune', 'evaluate', 'done'] as const;

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

function compact(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

/** One status line for a terminal: the stage, a bar over the whole pipeline (generation by shard), and the counts. */
export function progressLine(p: RunProgress): string {
  const stageIndex = Math.max(0, STAGES.indexOf(p.stage as (typeof STAGES)[number]));
  let within = 0;
  if (p.stage === 'generate' && p.generation && p.generation.shardCount)
    within = p.generation.shardsDone / p.generation.shardCount;
  const overall = (stageIndex + within) / (STAGES.length - 1);
  const parts = [`[${p.stage}]`, bar(overall)];
  if (p.generation)
    parts.push(
      `shards ${p.generation.shardsDone}/${p.generation.shardCount}`,
      `samples ${compact(p.generation.samples)}`,
    );
  parts.push(`tokens ${compact(p.tokens.prompt + p.tokens.completion)}`);
  if (p.generation?.costUSD)
    parts.push(
      `$${p.generation.costUSD.toFixed(2)} (projected $${p.generation.projectedCostUSD.toFixed(2)})${p.generation.stoppedByBudget ? ' budget spent' : ''}`,
    );
  if (p.acceptanceRate !== null) parts.push(`accepted ${(p.acceptanceRate * 100).toFixed(1)}%`);
  if (p.counts.filter) parts.push(`sft ${p.counts.filter.kept}`);
  if (p.counts.finetune) parts.push(`steps ${p.counts.finetune.steps}`);
  for (const [key, c] of Object.entries(p.counts)) {
    if (!key.startsWith('evaluate.') || typeof c.pass1 !== 'number') continue;
    const split =
      typeof c.correct === 'number'
        ? ` (${c.correct}/${c.incorrect ?? 0}/${c.noAnswer ?? 0} correct/incorrect/no answer)`
        : '';
    parts.push(`${key.slice('evaluate.'.length)} ${(c.pass1 * 100).toFixed(1)}%${split}`);
  }
  return parts.join('  ');
}

/**
 * What the running long activity last reported in its heartbeat (the workflow does not see heartbeats, so the CLI
 * reads them from the pending activity): the trainer's step and loss, or how far evaluation has got.
 */
export function activityDetail(type: string, d: Record<string, unknown> | null | undefined): string {
  if (!d) return '';
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  if (type === 'fineTune' || type === 'openaiFineTune') {
    const step = num(d.step);
    const total = num(d.total);
    const loss = num(d.loss);
    const parts = [
      typeof d.status === 'string' ? `job ${d.status}` : '',
      step !== null ? `step ${step}${total ? `/${total}` : ''}` : '',
      loss !== null ? `loss ${loss.toFixed(3)}` : '',
    ];
    return parts.filter(Boolean).join(' ');
  }
  if (type === 'evaluate') {
    if (typeof d.model !== 'string') return '';
    const done = num(d.done);
    const c = num(d.correct);
    const tally =
      c !== null ? `so far ${c} correct / ${num(d.incorrect) ?? 0} incorrect / ${num(d.noAnswer) ?? 0} no answer` : '';
    return [
      `${d.model}`,
      typeof d.phase === 'string' ? d.phase : '',
      done !== null ? `${done} answers (sample ${num(d.sample) ?? 0})` : '',
      tally,
    ]
      .filter(Boolean)
      .join(': ');
  }
  return '';
}
