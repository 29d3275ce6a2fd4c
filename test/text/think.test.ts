import {
  dropThinkBlocks,
  finalPart,
  formatThink,
  reasoningAndSummary,
  splitThink,
  stripThinkTags,
} from '../../activities/text/think';

describe('splitThink', () => {
  test.each([
    { name: 'no think block', text: 'just 42', reasoning: null, final: 'just 42' },
    { name: 'one block', text: '<think>r</think>\nS', reasoning: 'r', final: '\nS' },
    {
      name: 'the LAST close ends the reasoning (a draft quotes the tag)',
      text: '<think>a</think> b</think>S',
      reasoning: 'a</think> b',
      final: 'S',
    },
    { name: 'text before <think> is not reasoning', text: 'pre<think>r</think>S', reasoning: 'r', final: 'S' },
    { name: 'opening tag in the prompt: close only', text: 'r</think>S', reasoning: 'r', final: 'S' },
    {
      name: 'cut off inside the reasoning: no final part',
      text: '<think>still thinking \\boxed{3}',
      reasoning: 'still thinking \\boxed{3}',
      final: null,
    },
    { name: 'empty', text: '', reasoning: null, final: '' },
  ])('$name', ({ text, reasoning, final }) => {
    expect(splitThink(text)).toEqual({ reasoning, final });
    expect(finalPart(text)).toBe(final);
  });
});

test('formatThink and reasoningAndSummary round-trip the one template', () => {
  const t = formatThink('step 1\nstep 2', 'So \\boxed{4}.');
  expect(t).toBe('<think>\nstep 1\nstep 2\n</think>\nSo \\boxed{4}.');
  expect(reasoningAndSummary(t)).toEqual({ reasoning: 'step 1\nstep 2', summary: 'So \\boxed{4}.' });
  expect(reasoningAndSummary('  no block  ')).toEqual({ reasoning: '', summary: 'no block' });
  expect(reasoningAndSummary('<think>cut')).toEqual({ reasoning: 'cut', summary: '' });
});

test('stripThinkTags and dropThinkBlocks', () => {
  expect(stripThinkTags('<think>r</think>s')).toBe('\nr\ns');
  expect(dropThinkBlocks('<think>maybe incorrect</think>{"verdict":"correct"}<think>x</think>')).toBe(
    '{"verdict":"correct"}',
  );
});
