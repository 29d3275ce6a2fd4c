import { resolveFilters } from '../../schemas/filter-options';
import { LanguageFilter, scriptProfile } from '../../activities/filter/language';
import { candidate } from './helpers';

const EN_REASONING =
  'First I add the units digits: seven plus five makes twelve, so I write two and carry one. Then the tens: four plus eight plus the carry is thirteen. The sum is one hundred thirty two.';
const ZH_REASONING =
  '首先计算个位数：七加五等于十二，写二进一。然后计算十位：四加八再加进位等于十三。所以和是一百三十二。';

describe('language: script of the answer vs the prompt, and mixing', () => {
  const filter = new LanguageFilter(resolveFilters({}).language);
  test.each([
    ['English prompt, English reasoning', 'Compute 47+85.', EN_REASONING, null],
    ['English prompt, Chinese reasoning', 'Compute 47+85.', ZH_REASONING, 'language_mismatch'],
    [
      'Chinese inside an English chain of thought',
      'Compute 47+85.',
      `${EN_REASONING} 所以答案是一百三十二。`,
      'language_mixing',
    ],
    [
      'one Chinese character in a long English chain of thought is tolerated (< 1%)',
      'Compute 47+85.',
      `${EN_REASONING.repeat(4)} 好`,
      null,
    ],
    [
      'Chinese prompt, Chinese reasoning with LaTeX and variables',
      '求 $x$ 的值：$2x+3=7$。',
      `设 $x$ 为未知数，\\frac{4}{2} 得 x = 2。${ZH_REASONING}`,
      null,
    ],
    [
      'Chinese prompt that itself uses English words',
      '计算 sin 和 cos 的值。',
      `sin 等于零，cos 等于一。${ZH_REASONING}`,
      null,
    ],
    ['Chinese prompt, English reasoning', '计算四十七加八十五。', EN_REASONING, 'language_mismatch'],
    [
      'Greek letters as math symbols',
      'Find the area of a circle of radius 2.',
      'The area is π r² = 4π, with θ unused. So it is four pi.',
      null,
    ],
    [
      'Japanese prompt and reasoning (kana and kanji together)',
      '四十七と八十五を足してください。',
      'まず一の位を足します。七と五で十二です。答えは百三十二です。',
      null,
    ],
    ['Russian prompt answered in English', 'Сложите сорок семь и восемьдесят пять.', EN_REASONING, 'language_mismatch'],
    [
      'Russian inside English reasoning',
      'Compute 47+85.',
      `${EN_REASONING} Итак ответ сто тридцать два и это правильно`,
      'language_mixing',
    ],
    [
      'code and URLs are not prose',
      'Write a loop.',
      'Use `for` here:\n```python\nfor i in range(3): print("你好")\n```\nSee https://例子.com for more. That prints three greetings.',
      null,
    ],
    ['answer without letters', 'Compute 1+2.', '1+2=3', null],
  ])('%s', (_name, prompt, reasoning, reason) => {
    const summary = /[\u4e00-\u9fff]/.test(prompt) ? '所以答案是 \\boxed{2}。' : 'So the answer is \\boxed{2}.';
    expect(filter.check(candidate(prompt, reasoning, summary))?.reason ?? null).toBe(reason);
  });

  test('the summary counts too: an English summary after Chinese reasoning of a Chinese prompt is mixing', () => {
    expect(
      filter.check(
        candidate('计算四十七加八十五。', ZH_REASONING, 'So the final answer is one hundred and thirty two.'),
      )?.reason,
    ).toBe('language_mixing');
  });

  test('the threshold is configurable: a little mixing may pass', () => {
    const lenient = new LanguageFilter(resolveFilters({ language: { maxForeignRatio: 0.2 } }).language);
    expect(lenient.check(candidate('Compute 47+85.', `${EN_REASONING} 所以答案是。`))).toBeNull();
  });

  test('off: nothing is dropped, the main script is still measured for the card', () => {
    const off = new LanguageFilter(resolveFilters({ language: { enabled: false } }).language);
    expect(off.check(candidate('Compute 47+85.', ZH_REASONING))).toBeNull();
    expect(off.lastScript).toBe('han');
  });

  test('scriptProfile counts words for alphabets and characters for CJK', () => {
    const p = scriptProfile('Hello world 你好 x π');
    expect(p.counts.latin).toBe(2); // "x" is a variable, not a word
    expect(p.counts.han).toBe(2);
    expect(p.counts.greek).toBe(0); // π is a symbol
    expect(p.main).toBe('latin');
  });
});

describe('language identification (tinyld) within one script', () => {
  const ES =
    'Primero sumamos las unidades: siete más cinco son doce, escribimos el dos y llevamos uno. Después sumamos las decenas: cuatro más ocho más uno son trece. Por lo tanto el resultado final de la suma es ciento treinta y dos.';
  const EN_PROMPT =
    'A farmer has forty seven apples in one basket and eighty five apples in another basket. He wants to know how many apples he has in total before he goes to the market tomorrow morning. How many apples does he have?';
  test.each([
    ['English prompt, Spanish reasoning', { detect: true, minDetectChars: 100 }, EN_PROMPT, ES, 'language_mismatch'],
    [
      'English prompt, English reasoning',
      { detect: true, minDetectChars: 100 },
      EN_PROMPT,
      EN_REASONING.repeat(2),
      null,
    ],
    [
      'expected English, got Spanish',
      { expect: 'en', minDetectChars: 100 },
      'Compute 47+85.',
      ES,
      'language_unexpected',
    ],
    ['expected Spanish, got Spanish', { expect: 'es', minDetectChars: 100 }, 'Compute 47+85.', ES, null],
    ['short prompt: not identified, so no mismatch', { detect: true, minDetectChars: 100 }, 'Compute 47+85.', ES, null],
    [
      'short reasoning: not identified',
      { expect: 'en', minDetectChars: 100 },
      'Compute 47+85.',
      'Siete más cinco son doce.',
      null,
    ],
  ])('%s', (_name, opts, prompt, reasoning, reason) => {
    const filter = new LanguageFilter(resolveFilters({ language: opts }).language);
    expect(filter.check(candidate(prompt, reasoning))?.reason ?? null).toBe(reason);
  });
});
