import type { RunSpec } from '../schemas/run-spec';
import type { RunSummary } from '../workflows/distillation';
import { DEFAULT_TEACHER_MODEL } from '../infra/teacher/server';
import { DEFAULT_BASE_ERROR_RATE, errorProbabilityPerStep } from '../infra/teacher/procedural-teacher';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * The scores a finished run prints: per model pass@1 ± s.e. and its samples by outcome (correct / incorrect / no
 * answer found), so a model that fails on the answer format is told apart from one that fails on the task.
 */
export function scoreLines(summary: RunSummary, spec?: Pick<RunSpec, 'teacher' | 'evaluation'>): string[] {
  const e = summary.evaluation;
  const out: string[] = [];
  const ev = spec?.evaluation;
  const asked = ev
    ? ` (every model: the same prompt and chat template, temperature ${ev.temperature}, top_p ${ev.top_p}, ${ev.maxNewTokens} new tokens)`
    : '';
  out.push(`${e.benchmark}: ${e.items} held-out items × k=${e.k}${asked}`);
  const w = Math.max(8, ...e.scores.map((s) => s.name.length));
  out.push(
    `  ${'model'.padEnd(w)}  ${'pass@1 ± s.e.'.padEnd(15)}  ${'correct'.padStart(7)}  ${'incorrect'.padStart(9)}  ${'no answer'.padStart(9)}  of`,
  );
  for (const s of e.scores) {
    const n = (v: number | undefined) => (v === undefined ? '—' : String(v));
    out.push(
      `  ${s.name.padEnd(w)}  ${`${pct(s.pass1)} ± ${(s.stderr * 100).toFixed(1)}`.padEnd(15)}  ${n(s.correct).padStart(7)}  ${n(s.incorrect).padStart(9)}  ${n(s.noAnswer).padStart(9)}  ${n(s.samples)}`,
    );
  }
  const teacher = e.scores.find((s) => s.name === 'teacher');
  if (teacher && spec && spec.teacher.model === DEFAULT_TEACHER_MODEL && ev) {
    const p = errorProbabilityPerStep(ev.temperature, ev.top_p, DEFAULT_BASE_ERROR_RATE);
    out.push(
      `note: the teacher here is the procedural template teacher, not a language model: it solves each problem by column arithmetic and makes a slip on ${pct(p)} of column steps at this temperature and top_p (a set error rate). Its score is that setting, not a measurement of a model. The run shows that the pipeline carries a teacher's verified traces into a student that learns the task and its answer format; it does not show how well a real reasoning model distils.`,
    );
  }
  return out;
}
