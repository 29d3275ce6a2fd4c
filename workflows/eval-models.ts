import type { EvalModel } from '../activities/evaluate/engines';
import type { IncumbentModel, PromotedStudent } from '../activities/evaluate/promoted';
import type { RunSpec } from '../schemas/run-spec';

/** What the fine-tune stage hands the evaluator (the fields each backend fills). */
export interface TrainedStudent {
  modelDir: string;
  baselineModelDir: string;
  /** 'tiny' (ONNX, byte tokenizer), 'hf' (a transformers checkpoint with a GGUF export), 'api' (a fine-tuning API's model). */
  studentKind?: 'tiny' | 'hf' | 'api';
  gguf?: string;
  baselineGguf?: string;
  /** The fine-tuning API's model id (openai backend). */
  fineTunedModel?: string;
}

/** The name the promoted model (the gate's incumbent) is scored under. */
export const INCUMBENT = 'promoted';

/**
 * The models the evaluate stage scores, all on the same items: the baseline (the student before fine-tuning), the
 * student, the currently promoted model when the gate must compare with it, optionally the teacher and further
 * endpoints. Each is served the way its kind allows.
 */
export function evalModels(spec: RunSpec, trained: TrainedStudent, incumbent?: IncumbentModel | null): EvalModel[] {
  const models: EvalModel[] = [];
  const kind = trained.studentKind ?? 'tiny';
  const ft = spec.fineTune.openai;
  if (spec.evaluation.baseline) {
    if (kind === 'hf')
      models.push({ name: 'baseline', serve: { gguf: trained.baselineGguf, hfDir: trained.baselineModelDir } });
    else if (kind === 'api' && ft)
      models.push({ name: 'baseline', endpoint: { baseURL: ft.baseURL, model: ft.model, apiKeyEnv: ft.apiKeyEnv } });
    else models.push({ name: 'baseline', dir: trained.baselineModelDir });
  }
  if (kind === 'hf') models.push({ name: 'student', serve: { gguf: trained.gguf, hfDir: trained.modelDir } });
  else if (kind === 'api' && ft && trained.fineTunedModel)
    models.push({
      name: 'student',
      endpoint: { baseURL: ft.baseURL, model: trained.fineTunedModel, apiKeyEnv: ft.apiKeyEnv },
    });
  else models.push({ name: 'student', dir: trained.modelDir });
  if (incumbent?.student && !incumbent.unavailable) {
    const p = incumbent.student;
    if (p.kind === 'hf') models.push({ name: INCUMBENT, serve: { gguf: p.gguf, hfDir: incumbent.modelDir } });
    else if (p.kind === 'api') models.push({ name: INCUMBENT, endpoint: p.endpoint });
    else models.push({ name: INCUMBENT, dir: incumbent.modelDir });
  }
  if (spec.evaluation.teacher) {
    const t = spec.teacher;
    models.push({
      name: 'teacher',
      endpoint: {
        baseURL: t.baseURL,
        model: t.model,
        apiKeyEnv: t.apiKeyEnv,
        systemPrompt: t.systemPrompt,
        maxInFlight: Math.min(t.maxInFlight, 16),
      },
    });
  }
  for (const e of spec.evaluation.endpoints)
    models.push({
      name: e.name,
      endpoint: {
        baseURL: e.baseURL,
        model: e.model,
        apiKeyEnv: e.apiKeyEnv,
        systemPrompt: e.systemPrompt,
        maxInFlight: e.maxInFlight,
      },
    });
  return models;
}

/** How this run's student is served, recorded in the pointer when it promotes: a later run scores it the same way. */
export function promotedStudentOf(spec: RunSpec, trained: TrainedStudent): PromotedStudent {
  const kind = trained.studentKind ?? 'tiny';
  const ft = spec.fineTune.openai;
  if (kind === 'hf') return { kind: 'hf', ...(trained.gguf ? { gguf: trained.gguf } : {}) };
  if (kind === 'api' && ft && trained.fineTunedModel)
    return {
      kind: 'api',
      endpoint: {
        baseURL: ft.baseURL,
        model: trained.fineTunedModel,
        ...(ft.apiKeyEnv ? { apiKeyEnv: ft.apiKeyEnv } : {}),
      },
    };
  return { kind: 'tiny' };
}
