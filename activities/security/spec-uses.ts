import type { RunSpec } from '../../schemas/run-spec';
import type { KeyUse } from './key-policy';

/**
 * Every key a run spec asks a worker to send and every file path it asks a worker to read or write, with the field
 * that asks. Pure, so the whole spec can be checked against the worker's policy before the run does anything.
 */

export interface PathUse {
  field: string;
  path: string;
  /** read: data or artifact roots; write: artifact roots only. */
  access: 'read' | 'write';
}

/** Names the trl backend resolves itself (a GGUF in the project cache), not paths. */
export const BUILTIN_STUDENTS: ReadonlySet<string> = new Set(['smollm2-135m-instruct']);
/** filters.length.tokenizer values that are not paths. */
export const BUILTIN_TOKENIZERS: ReadonlySet<string> = new Set(['estimate', 'byte']);

export function specKeyUses(spec: RunSpec): KeyUse[] {
  const uses: KeyUse[] = [];
  const add = (field: string, envName: string | undefined, baseURL: string) => {
    if (envName) uses.push({ field, envName, baseURL });
  };
  add('teacher.apiKeyEnv', spec.teacher.apiKeyEnv, spec.teacher.baseURL);
  if (spec.verifier.judge) add('verifier.judge.apiKeyEnv', spec.verifier.judge.apiKeyEnv, spec.verifier.judge.baseURL);
  spec.evaluation.endpoints.forEach((e, i) => add(`evaluation.endpoints.${i}.apiKeyEnv`, e.apiKeyEnv, e.baseURL));
  const ft = spec.fineTune.openai;
  if (spec.fineTune.backend === 'openai' && ft) add('fineTune.openai.apiKeyEnv', ft.apiKeyEnv, ft.baseURL);
  return uses;
}

export function specPathUses(spec: RunSpec): PathUse[] {
  const uses: PathUse[] = [{ field: 'artifactRoot', path: spec.artifactRoot, access: 'write' }];
  const read = (field: string, p: string) => uses.push({ field, path: p, access: 'read' });
  if (spec.dataset && spec.dataset.source.type !== 'builtin') read('dataset.source.path', spec.dataset.source.path);
  spec.datasets?.forEach((d) => d.source.type !== 'builtin' && read(`datasets.${d.name}.source.path`, d.source.path));
  spec.evaluation.benchmarks.forEach((b, i) => 'path' in b && read(`evaluation.benchmarks.${i}.path`, b.path));
  const f = spec.filters;
  if (!BUILTIN_TOKENIZERS.has(f.length.tokenizer)) read('filters.length.tokenizer', f.length.tokenizer);
  f.earlierDatasets.forEach((p, i) => read(`filters.earlierDatasets.${i}`, p));
  f.decontaminate.benchmarks.forEach((b, i) => read(`filters.decontaminate.benchmarks.${i}.path`, b.path));
  const student = spec.fineTune.student;
  if (spec.fineTune.backend === 'trl' && !BUILTIN_STUDENTS.has(student.source))
    read('fineTune.student.source', student.source);
  if (student.initFrom && !student.initFrom.startsWith('promoted:'))
    read('fineTune.student.initFrom', student.initFrom);
  return uses;
}
