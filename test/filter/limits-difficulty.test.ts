import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeJsonlAtomic } from '../../activities/artifacts/store';
import { resolveFilters } from '../../schemas/filter-options';
import { DifficultyFilter, loadPassRates } from '../../activities/filter/difficulty';
import { countCodeBlocks, countLinks, LimitsFilter } from '../../activities/filter/limits';
import { candidate } from './helpers';

describe('code-block and link limits', () => {
  const CODE = 'Here:\n```python\nprint(1)\n```\nand\n```\nx = 2\n```\n';
  test('counting', () => {
    expect(countCodeBlocks(CODE)).toBe(2);
    expect(countCodeBlocks('no code')).toBe(0);
    expect(countLinks('see https://example.com/a?b=1 and [doc](./docs/x.md) and http://x.org')).toBe(3);
    expect(countLinks('no links, just 3.14')).toBe(0);
  });
  test.each([
    ['off by default', {}, CODE + 'https://a.b https://c.d', null],
    ['code blocks within the limit', { maxCodeBlocks: 2 }, CODE, null],
    ['too many code blocks', { maxCodeBlocks: 1 }, CODE, 'too_many_code_blocks'],
    ['no links allowed', { maxLinks: 0 }, 'see https://example.com', 'too_many_links'],
    ['links within the limit', { maxLinks: 1 }, 'see https://example.com', null],
  ])('%s', (_name, opts, reasoning, reason) => {
    const f = new LimitsFilter(resolveFilters({ limits: opts }).limits);
    expect(f.check(candidate('q', reasoning))?.reason ?? null).toBe(reason);
  });
});

describe('difficulty: pass rate of the prompt in rejection sampling', () => {
  const rates = new Map([
    ['easy', 1],
    ['medium', 0.5],
    ['hard', 0.125],
  ]);
  test.each([
    ['medium kept in [0.2, 0.8]', 'medium', { minPassRate: 0.2, maxPassRate: 0.8 }, null],
    ['always solved: too easy', 'easy', { minPassRate: 0.2, maxPassRate: 0.8 }, 'too_easy'],
    ['rarely solved: too hard', 'hard', { minPassRate: 0.2, maxPassRate: 0.8 }, 'too_hard'],
    ['bounds are inclusive', 'easy', { minPassRate: 0.5, maxPassRate: 1 }, null],
    ['unknown prompt is kept (and counted)', 'other', { minPassRate: 0.2, maxPassRate: 0.8 }, null],
    ['the default range keeps everything', 'easy', {}, null],
  ])('%s', (_name, promptId, opts, reason) => {
    const f = new DifficultyFilter(rates, resolveFilters({ difficulty: opts }).difficulty);
    expect(f.check(candidate('q', 'r', 's', { promptId }))?.reason ?? null).toBe(reason);
  });

  test('without pass rates the filter is off', () => {
    const f = new DifficultyFilter(undefined, resolveFilters({ difficulty: { minPassRate: 0.5 } }).difficulty);
    expect(f.enabled).toBe(false);
    expect(f.check(candidate('q', 'r'))).toBeNull();
  });

  test("reads verify/pass-rates.jsonl (the verify stage's rows) and checks its sha256", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rates-'));
    const ref = await writeJsonlAtomic(path.join(dir, 'pass-rates.jsonl'), [
      { promptId: 'a', samples: 4, correct: 3, passRate: 0.75, verdicts: { correct: 3, wrong: 1 } },
      { promptId: 'b', samples: 4, correct: 0, passRate: 0 },
    ]);
    expect(await loadPassRates(ref)).toEqual(
      new Map([
        ['a', 0.75],
        ['b', 0],
      ]),
    );
    await expect(loadPassRates({ ...ref, sha256: '0'.repeat(64) })).rejects.toThrow(/changed on disk/);
  });

  test('min above max is rejected by the config', () => {
    expect(() => resolveFilters({ difficulty: { minPassRate: 0.9, maxPassRate: 0.1 } })).toThrow(/minPassRate/);
  });
});
