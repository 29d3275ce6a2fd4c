import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveFilters } from '../../schemas/filter-options';
import { Deduper, promptAndAnswer } from '../../activities/filter/dedup';
import {
  candidateProbability,
  HashSet64,
  jaccardSorted,
  LshIndex,
  lshParams,
  MinHasher,
  sortedSet,
} from '../../activities/filter/minhash';

/** Deterministic pseudo-text: `n` words from a small vocabulary. */
function words(n: number, seed: number): string[] {
  const vocab =
    'alpha beta gamma delta sum carry digit column add write total answer check first then next value result units tens'.split(
      ' ',
    );
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return `${vocab[s % vocab.length]}${(s >>> 8) % 50}`;
  });
}

const BASE = words(120, 1);
const edit = (ws: string[], positions: number[]) => ws.map((w, i) => (positions.includes(i) ? `changed${i}` : w));

describe('dedup: exact and near duplicates', () => {
  const opts = () => ({ exact: true, near: resolveFilters({}).nearDedup });
  test.each([
    ['the same text', BASE.join(' '), 'duplicate'],
    ['the same text, other case and whitespace', `  ${BASE.join('   ').toUpperCase()}\n`, 'duplicate'],
    ['two words of 120 changed (Jaccard 0.85: near duplicate)', edit(BASE, [10, 70]).join(' '), 'near_duplicate'],
    ['three words of 120 changed (Jaccard 0.77 < 0.8: kept)', edit(BASE, [5, 50, 100]).join(' '), null],
    [
      'a word inserted and one deleted',
      [...BASE.slice(0, 30), 'inserted', ...BASE.slice(30, 80), ...BASE.slice(81)].join(' '),
      'near_duplicate',
    ],
    [
      'a third of the words changed (related, not a duplicate)',
      edit(
        BASE,
        Array.from({ length: 40 }, (_, i) => i * 3),
      ).join(' '),
      null,
    ],
    ['a different text', words(120, 2).join(' '), null],
    ['the first half only', BASE.slice(0, 60).join(' '), null],
  ])('%s', (_name, text, reason) => {
    const d = new Deduper(opts());
    expect(d.check('a', 'Question?', BASE.join(' '))).toBeNull();
    expect(d.check('b', 'Question?', text)?.reason ?? null).toBe(reason);
  });

  test('the threshold is configurable: at 0.7 three changed words of 120 are a near duplicate', () => {
    const d = new Deduper({ exact: true, near: resolveFilters({ nearDedup: { threshold: 0.7 } }).nearDedup });
    expect(d.check('a', 'Question?', BASE.join(' '))).toBeNull();
    expect(d.check('b', 'Question?', edit(BASE, [5, 50, 100]).join(' '))?.detail).toMatch(
      /^Jaccard 0\.7\d+ ≥ 0\.7 with a/,
    );
  });

  test('the same answer to another prompt is not a duplicate under scope "sample" when the prompt is long enough to matter', () => {
    const d = new Deduper(opts());
    const answer = words(20, 3).join(' ');
    expect(d.check('a', words(40, 4).join(' '), answer)).toBeNull();
    expect(d.check('b', words(40, 5).join(' '), answer)).toBeNull();
  });

  test('scope "prompt" keeps one sample per near-identical prompt', () => {
    const d = new Deduper({ exact: false, near: resolveFilters({ nearDedup: { scope: 'prompt' } }).nearDedup });
    expect(d.check('a', BASE.join(' '), 'answer one')).toBeNull();
    expect(d.check('b', edit(BASE, [3]).join(' '), 'a completely different answer')?.reason).toBe('near_duplicate');
  });

  test('off: near duplicates stay, exact ones go', () => {
    const d = new Deduper({ exact: true, near: resolveFilters({ nearDedup: { enabled: false } }).nearDedup });
    expect(d.check('a', 'q', BASE.join(' '))).toBeNull();
    expect(d.check('b', 'q', edit(BASE, [10]).join(' '))).toBeNull();
    expect(d.check('c', 'q', BASE.join(' '))?.reason).toBe('duplicate');
  });

  test('dropped samples never enter the index: a near duplicate of a dropped one is compared with what was kept', () => {
    const d = new Deduper(opts());
    expect(d.check('a', 'q', BASE.join(' '))).toBeNull();
    expect(d.check('b', 'q', edit(BASE, [10]).join(' '))?.reason).toBe('near_duplicate');
    expect(d.check('c', 'q', edit(BASE, [10, 20]).join(' '))?.detail).toContain('with a ');
  });

  test('against earlier runs: messages, ShareGPT and prompt/content rows, read back from disk by offset', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dedup-'));
    const old = path.join(dir, 'old-sft.jsonl');
    const other = words(120, 9).join(' ');
    writeFileSync(
      old,
      [
        JSON.stringify({
          id: 'x',
          messages: [
            { role: 'user', content: 'Question?' },
            { role: 'assistant', content: `<think>\n${BASE.join(' ')}\n</think>\nok` },
          ],
        }),
        '',
        JSON.stringify({
          id: 'y',
          conversations: [
            { from: 'human', value: 'Other?' },
            { from: 'gpt', value: other },
          ],
        }),
        JSON.stringify({ prompt: 'P', content: 'ünïcödé ✓ text before the offsets matter' }),
      ].join('\r\n') + '\n',
    );
    const d = new Deduper(opts());
    expect(await d.addEarlier(old)).toBe(3);
    expect(d.check('s1', 'Question?', `<think>\n${BASE.join(' ')}\n</think>\nok`)?.reason).toBe(
      'duplicate_earlier_run',
    );
    const near = d.check(
      's2',
      'Question?',
      `<think>\n${edit(BASE, [7]).join(' ')}\n</think>\nok`,
      `${edit(BASE, [7]).join(' ')}\nok`,
    );
    expect(near?.reason).toBe('near_duplicate_earlier_run');
    expect(near?.detail).toContain(`with ${old}, row at byte 0`);
    expect(d.check('s3', 'Other?', edit(other.split(' '), [50]).join(' '))?.reason).toBe('near_duplicate_earlier_run');
    expect(d.check('s4', 'New?', words(120, 11).join(' '))).toBeNull();
    expect(d.stats().earlierDatasets).toEqual([{ path: old, rows: 3 }]);
    d.close();
  });

  test('promptAndAnswer reads the SFT formats', () => {
    expect(
      promptAndAnswer({
        messages: [
          { role: 'system', content: 's' },
          { role: 'user', content: 'u' },
          { role: 'assistant', content: 'a' },
        ],
      }),
    ).toEqual({ prompt: 'u', answer: 'a' });
    expect(
      promptAndAnswer({
        conversations: [
          { from: 'human', value: 'u' },
          { from: 'gpt', value: 'a' },
        ],
      }),
    ).toEqual({ prompt: 'u', answer: 'a' });
    expect(promptAndAnswer({ prompt: 'u', completion: 'a' })).toEqual({ prompt: 'u', answer: 'a' });
    expect(promptAndAnswer({ text: 'x' })).toBeNull();
  });
});

describe('MinHash and LSH', () => {
  test('the signature estimates Jaccard similarity without bias', () => {
    const mh = new MinHasher({ numPerm: 128, shingleSize: 1 });
    const lsh = new LshIndex({ bands: 32, rows: 4, numPerm: 128 });
    let r = 12345;
    const rnd = () => (r = (Math.imul(r, 1103515245) + 12345) | 0);
    const errors: number[] = [];
    for (let t = 0; t < 500; t++) {
      const common = Array.from({ length: 50 + (t % 100) }, rnd);
      const a = Int32Array.from([...common, ...Array.from({ length: t % 60 }, rnd)]);
      const b = Int32Array.from([...common, ...Array.from({ length: (t * 7) % 60 }, rnd)]);
      const exact = jaccardSorted(sortedSet(a, a.length), sortedSet(b, b.length));
      mh.compute(a, a.length);
      const doc = lsh.insert(mh.signature);
      mh.compute(b, b.length);
      errors.push(lsh.similarity(mh.signature, doc) - exact);
    }
    const mean = errors.reduce((x, y) => x + y) / errors.length;
    const sd = Math.sqrt(errors.reduce((x, y) => x + (y - mean) ** 2, 0) / errors.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(sd).toBeLessThan(0.06); // ≈ sqrt(J(1-J)/128), plus the b-bit correction
  });

  test('bands and rows are chosen for recall at the threshold', () => {
    const p = lshParams(0.8, 128);
    expect(p).toEqual({ bands: 25, rows: 5 });
    expect(candidateProbability(0.8, p.bands, p.rows)).toBeGreaterThan(0.999);
    expect(candidateProbability(0.3, p.bands, p.rows)).toBeLessThan(0.06);
  });

  test('exact Jaccard of sorted sets', () => {
    expect(jaccardSorted(Int32Array.from([1, 2, 3]), Int32Array.from([2, 3, 4]))).toBe(0.5);
    expect(jaccardSorted(Int32Array.from([]), Int32Array.from([]))).toBe(1);
    expect(sortedSet(Int32Array.from([3, 1, 3, 2, 1]), 5)).toEqual(Int32Array.from([1, 2, 3]));
  });

  test('HashSet64 grows and answers membership', () => {
    const s = new HashSet64(4);
    for (let i = 0; i < 10_000; i++) expect(s.add(i, i * 7)).toBe(true);
    expect(s.add(0, 0)).toBe(false); // (0, 0) was added as i = 0
    expect(s.add(5, 35)).toBe(false);
    expect(s.has(9999, 69993)).toBe(true);
    expect(s.has(1, 1)).toBe(false);
    expect(s.size).toBe(10_000);
  });

  test('thousands of documents sharing bands (templated data) stay cheap', () => {
    const d = new Deduper({ exact: true, near: resolveFilters({}).nearDedup });
    const template = words(60, 77).join(' ');
    const t0 = performance.now();
    for (let i = 0; i < 3000; i++)
      d.check(`t${i}`, `Compute ${i}+${i + 1}.`, `${template} the result is ${2 * i + 1} ${words(8, i).join(' ')}`);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });
});
