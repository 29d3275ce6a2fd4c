import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatAssistant, formatFilter } from '../../activities/filter/format-filter';
import { readJsonl, writeJsonlAtomic } from '../../activities/artifacts/store';
import { FiltersSchema } from '../../schemas/run-spec';

test.each([
  ['<think>a</think>\nThe answer is 3.', undefined, '<think>\na\n</think>\nThe answer is 3.'],
  ['The answer is 3.', 'a', '<think>\na\n</think>\nThe answer is 3.'], // reasoning_content repaired into the template
  ['a</think> 3', undefined, '<think>\na\n</think>\n3'], // opening tag was in the prompt
])('formats %j', (content, reasoning, expected) => {
  expect(formatAssistant({ content, reasoning }, true)).toEqual({ ok: true, text: expected });
});

test.each([
  ['The answer is 3.', 'no_think'],
  ['<think>a</think><think>b</think>3', 'malformed_think'],
  ['<think>a', 'malformed_think'],
  ['<think> </think>3', 'empty_reasoning'],
  ['<think>a</think>', 'empty_answer'],
  ['x<think>a</think>3', 'malformed_think'],
])('drops %j as %s', (content, reason) => {
  const r = formatAssistant({ content }, true);
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.reason).toBe(reason);
});

test('every accepted sample is either in the SFT set or in rejects with its reason', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'filter-'));
  const base = { prompt: 'Compute 1+2.', answer: '3', finishReason: 'stop' };
  const samples = [
    { ...base, id: 'a', content: '<think>1+2=3</think>\n\\boxed{3}' },
    { ...base, id: 'b', content: '<think>1+2=3</think>\n\\boxed{3}' }, // exact duplicate of a
    { ...base, id: 'c', content: '<think>1+2', finishReason: 'length' },
    { ...base, id: 'd', content: '\\boxed{3}' },
    { ...base, id: 'e', content: `<think>${'x'.repeat(500)}</think>3` },
    { ...base, id: 'f', content: '<think>one plus two</think>\n\\boxed{3}' },
  ];
  const accepted = await writeJsonlAtomic(path.join(dir, 'accepted.jsonl'), samples);
  const r = await formatFilter({ runDir: dir, accepted, filters: FiltersSchema.parse({ maxChars: 200 }) });
  expect(r).toMatchObject({
    samplesIn: 6,
    kept: 2,
    rejected: 4,
    reasons: { duplicate: 1, truncated: 1, no_think: 1, too_long: 1 },
  });
  const sft: { id: string; messages: { role: string }[] }[] = [];
  for await (const row of readJsonl<{ id: string; messages: { role: string }[] }>(r.sftRef)) sft.push(row);
  expect(sft.map((s) => s.id)).toEqual(['a', 'f']);
  expect(sft[0]!.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
});
