import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { checkRunSpec, runSpecJsonSchema } from '../../schemas/run-spec';
import { readSpecFile } from '../../cli/spec-file';

const minimal = {
  name: 'r1',
  dataset: { source: { type: 'builtin', task: 'arithmetic' } },
  teacher: { baseURL: 'http://127.0.0.1:8400/v1', model: 'm' },
};

test('a minimal spec gets R1 sampling defaults', () => {
  const r = checkRunSpec(minimal);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  expect(r.spec.sampling).toMatchObject({ temperature: 0.6, top_p: 0.95, n: 4 });
  expect(r.spec.taskQueues).toEqual({ workflow: 'distillery', cpu: 'distillery-cpu', gpu: 'distillery-gpu' });
});

test.each([
  [{ teacher: { ...minimal.teacher, apiKeyEnv: 'sk-abc 123' } }, 'teacher.apiKeyEnv'],
  [{ teacher: { ...minimal.teacher, baseURL: 'localhost' } }, 'teacher.baseURL'],
  // The fine-tune API's key variable obeys the same name rule as every other apiKeyEnv (never a key, never a shell word).
  [
    {
      fineTune: {
        backend: 'openai',
        openai: { baseURL: 'https://api.openai.com/v1', model: 'm', apiKeyEnv: 'sk-abc 123' },
      },
    },
    'fineTune.openai.apiKeyEnv',
  ],
  [
    { fineTune: { backend: 'openai', openai: { baseURL: 'https://api.openai.com/v1', model: 'm', apiKeyEnv: '' } } },
    'fineTune.openai.apiKeyEnv',
  ],
  [{ sampling: { top_p: 0 } }, 'sampling.top_p'],
  [{ sampling: { n: 1.5 } }, 'sampling.n'],
  [{ dataset: { source: { type: 'jsonl' } } }, 'dataset.source.path'],
  [{ dataset: { source: { type: 'csv', path: 'x' } } }, 'dataset.source.type'],
  [{ fineTune: { lr: -1 } }, 'fineTune.lr'],
  [{ generation: { shardSize: 0 } }, 'generation.shardSize'],
])('rejects %j naming %s', (patch, field) => {
  const r = checkRunSpec({ ...minimal, ...patch });
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.issues.map((i) => i.path)).toContain(field);
});

test('reports every bad field at once, not only the first', () => {
  const r = checkRunSpec({ name: '', dataset: {}, teacher: { model: 3 }, sampling: { temperature: -1 } });
  expect(r.ok).toBe(false);
  if (!r.ok)
    expect(r.issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(['name', 'dataset.source', 'teacher.baseURL', 'teacher.model', 'sampling.temperature']),
    );
});

test('the embedded default spec and the README example are valid', () => {
  const spec = readSpecFile(path.join(__dirname, '..', '..', 'specs', 'embedded-default.yaml'));
  expect(checkRunSpec(spec).ok).toBe(true);
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const example = /Input \(encoding `json\/plain`\)[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)![1]!;
  expect(checkRunSpec(JSON.parse(example)).ok).toBe(true);
});

test('the committed JSON Schema is the one the zod schema exports', () => {
  const committed = JSON.parse(
    readFileSync(path.join(__dirname, '..', '..', 'schemas', 'run-spec.schema.json'), 'utf8'),
  );
  expect(committed).toEqual(runSpecJsonSchema());
});
