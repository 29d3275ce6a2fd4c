import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FilterOptionsSchema, resolveFilters } from '../../schemas/filter-options';
import { readJsonlLocated, RowReader } from '../../activities/filter/jsonl';
import { FiltersSchema, RunSpecSchema } from '../../schemas/run-spec';

describe('filter config', () => {
  test("today's RunSpec['filters'] resolves to the same options as the extended schema's defaults", () => {
    expect(resolveFilters(FiltersSchema.parse({}))).toEqual(FilterOptionsSchema.parse({}));
  });

  test('the four existing keys keep their meaning', () => {
    const f = resolveFilters(FiltersSchema.parse({ maxChars: 2000, dedupExact: false }));
    expect(f).toMatchObject({ requireThink: true, dropTruncated: true, maxChars: 2000, dedupExact: false });
  });

  test('sections are filled independently', () => {
    const f = resolveFilters({ nearDedup: { threshold: 0.9 }, decontaminate: { ngram: 13 } });
    expect(f.nearDedup).toMatchObject({ enabled: true, threshold: 0.9, numPerm: 128, shingleSize: 5 });
    expect(f.decontaminate).toMatchObject({ enabled: true, ngram: 13, evaluationBenchmark: true, benchmarks: [] });
    expect(f.language.enabled).toBe(true);
  });

  test.each([
    [{ nearDedup: { numPerm: 130 } }, /multiple of 4/i],
    [{ language: { expect: 'english' } }, /ISO 639-1/],
    [{ repetition: { ngram: 1 } }, /2/],
    [{ unknownKey: true }, /unrecognized/i],
  ])('rejects %j', (bad, message) => {
    expect(() => resolveFilters(bad as never)).toThrow(message);
  });

  test('the embedded default spec parses and resolves', () => {
    const spec = RunSpecSchema.parse({
      name: 'x',
      dataset: { source: { type: 'builtin', task: 'arithmetic' } },
      teacher: { baseURL: 'http://127.0.0.1:8400/v1', model: 'm' },
    });
    expect(resolveFilters(spec.filters).nearDedup.threshold).toBe(0.8);
  });
});

describe('JSONL with byte offsets', () => {
  test('offsets read rows back exactly (multi-byte text, CRLF, blank lines, chunk boundaries)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jsonl-'));
    const file = path.join(dir, 'rows.jsonl');
    const rows = Array.from({ length: 6000 }, (_, i) => ({ i, text: `${'ü✓中'.repeat(i % 97)} row ${i}` }));
    writeFileSync(
      file,
      rows.map((r, i) => JSON.stringify(r) + (i % 3 === 0 ? '\r\n' : '\n') + (i % 500 === 0 ? '\n' : '')).join('') +
        JSON.stringify({ i: 6000, text: 'last, no newline' }),
    );
    expect(readFileSync(file).length).toBeGreaterThan(1 << 20); // crosses the 1 MiB read chunks
    const reader = new RowReader();
    let n = 0;
    for await (const { row, offset, length } of readJsonlLocated<{ i: number }>(file)) {
      expect(row.i).toBe(n);
      expect(reader.read<{ i: number }>(file, offset, length)).toEqual(row);
      n += 1;
    }
    expect(n).toBe(6001);
    reader.close();
  });

  test('a bad line is reported with its number', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jsonl-'));
    const file = path.join(dir, 'bad.jsonl');
    writeFileSync(file, '{"a":1}\n{oops\n');
    const it = readJsonlLocated(file);
    await expect(
      (async () => {
        for await (const _ of it) void _;
      })(),
    ).rejects.toThrow(/bad.jsonl:2: not valid JSON/);
  });
});
