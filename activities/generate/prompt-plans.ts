import type { RunSpec } from '../../schemas/run-spec';
import type { PromptRow } from '../../schemas/artifact';
import { loadSourcePlans } from '../dataset/mixture';
import { createTeacherClient } from './teacher-client';
import { generationConfigHash } from './sample-ids';

export interface PromptPlan {
  n: number;
  configHash: string;
  sampling: RunSpec['sampling'];
  teacher: ReturnType<typeof createTeacherClient>;
  existing: boolean;
}

/**
 * Each prompt's generation: the run's, or its mixture source's (own sampling, own system prompt: its own config
 * hash, so its sample ids change with them; or its existing responses, one sample and no teacher call).
 */
export async function sourcePlansOf(
  input: { runDir: string; teacher: RunSpec['teacher']; sampling: RunSpec['sampling'] },
  base: PromptPlan,
): Promise<(p: PromptRow) => PromptPlan> {
  const plans = await loadSourcePlans(input.runDir);
  if (!plans) return () => base;
  const bySource = new Map<string, PromptPlan>();
  return (p) => {
    const plan = p.source ? plans.get(p.source) : undefined;
    if (!plan) return base;
    let got = bySource.get(plan.name);
    if (!got) {
      const sampling = { ...input.sampling, ...plan.sampling };
      const teacher =
        plan.systemPrompt !== undefined ? { ...input.teacher, systemPrompt: plan.systemPrompt } : input.teacher;
      const existing = plan.responses === 'existing';
      got = {
        n: existing ? 1 : sampling.n,
        configHash: existing ? 'existing' : generationConfigHash({ teacher, sampling }),
        sampling,
        teacher: createTeacherClient(teacher, sampling),
        existing,
      };
      bySource.set(plan.name, got);
    }
    return got;
  };
}
