import { checkCompletion } from '../../activities/filter/completion';
import { resolveFilters } from '../../schemas/filter-options';
import { formatAssistant, FormatStep, statesFinalAnswer, stripTrailingSpecial } from '../../activities/filter/format';
import { sample } from './helpers';

describe('format: one template, repaired where possible', () => {
  test.each([
    ['inline think', '<think>a</think>\nThe answer is 3.', undefined, '<think>\na\n</think>\nThe answer is 3.'],
    ['reasoning_content repaired into think tags', 'The answer is 3.', 'a', '<think>\na\n</think>\nThe answer is 3.'],
    ['opening tag was in the prompt', 'a</think> 3', undefined, '<think>\na\n</think>\n3'],
    [
      'whitespace normalised around the tags',
      '  <think>\n\n a \n</think>\n\n 3  ',
      undefined,
      '<think>\na\n</think>\n3',
    ],
    ['end-of-sequence token stripped', '<think>a</think>\n3<|im_end|>', undefined, '<think>\na\n</think>\n3'],
    ['DeepSeek end token stripped', '<think>a</think>\n3<｜end▁of▁sentence｜>', undefined, '<think>\na\n</think>\n3'],
  ])('keeps %s', (_name, content, reasoning, expected) => {
    expect(formatAssistant({ content, reasoning }, true)).toEqual({ ok: true, text: expected });
  });

  test.each([
    ['no reasoning at all', 'The answer is 3.', undefined, 'no_think'],
    ['two think blocks', '<think>a</think><think>b</think>3', undefined, 'malformed_think'],
    ['unclosed think (truncated inside the reasoning)', '<think>a', undefined, 'malformed_think'],
    ['empty reasoning', '<think> </think>3', undefined, 'empty_reasoning'],
    ['no answer after the reasoning', '<think>a</think>', undefined, 'empty_answer'],
    ['reasoning_content but empty content', '', 'a', 'empty_answer'],
    ['text before the think block', 'x<think>a</think>3', undefined, 'malformed_think'],
  ])('drops %s', (_name, content, reasoning, reason) => {
    const r = formatAssistant({ content, reasoning }, true);
    expect(r).toMatchObject({ ok: false, reason });
  });

  test('without requireThink a plain answer is kept as it is', () => {
    expect(formatAssistant({ content: 'The answer is 3.' }, false)).toEqual({ ok: true, text: 'The answer is 3.' });
  });

  test('stripTrailingSpecial leaves ordinary text alone', () => {
    expect(stripTrailingSpecial('a < b and c > d')).toBe('a < b and c > d');
    expect(stripTrailingSpecial('x</s>\n')).toBe('x');
  });

  const f = resolveFilters({ format: { maxSummaryChars: 40, requireFinalAnswer: true } });
  const step = new FormatStep({ requireThink: true, format: f.format });
  test.each([
    ['concise boxed summary', '<think>r</think>\n\\boxed{42}', null],
    ['summary stating the gold answer', '<think>r</think>\nIt is 42.', null],
    ['summary too long', `<think>r</think>\n${'so '.repeat(30)}\\boxed{42}`, 'summary_too_long'],
    ['summary without the final answer', '<think>r</think>\nI am done.', 'no_final_answer'],
  ])('summary: %s', (_name, content, reason) => {
    const r = step.apply(sample({ content }));
    if (reason === null) expect(r.verdict).toBeNull();
    else expect(r.verdict?.reason).toBe(reason);
  });

  test('statesFinalAnswer', () => {
    expect(statesFinalAnswer('\\boxed{7}', '8')).toBe(true);
    expect(statesFinalAnswer('the result is 8', '8')).toBe(true);
    expect(statesFinalAnswer('the result is 8', '')).toBe(false);
  });
});

describe('empty and truncated completions', () => {
  test.each([
    ['finish_reason length (truncated)', { finishReason: 'length' }, 'truncated'],
    ['content filter', { finishReason: 'content_filter' }, 'content_filter'],
    ['empty content and reasoning', { content: '  ', reasoning: undefined }, 'empty'],
    ['normal stop', { finishReason: 'stop' }, null],
    ['null finish reason (some servers)', { finishReason: null }, null],
    ['empty content but reasoning present (repaired later)', { content: '', reasoning: 'r' }, null],
  ])('%s', (_name, over, reason) => {
    const v = checkCompletion(sample(over as never), true);
    expect(v?.reason ?? null).toBe(reason);
  });

  test('dropTruncated: false keeps truncated samples', () => {
    expect(checkCompletion(sample({ finishReason: 'length' }), false)).toBeNull();
  });
});
