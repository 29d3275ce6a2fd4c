import { mkdtempSync, promises as fs, readdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { AtomicJsonlWriter, ensureWritableDir, readJsonlLines, verifyRef, writeChunksAtomic, writeJsonlAtomic } from '../../activities/artifacts/store';

/** The artifact store under faults: what a failed write leaves, how a changed artifact and a read-only root fail. */
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'store-faults-'));

test('a checksum mismatch is a non-retryable ArtifactChecksumMismatch that names the file', async () => {
  const dir = tmp();
  const ref = await writeJsonlAtomic(path.join(dir, 'x.jsonl'), [{ a: 1 }, { a: 2 }]);
  await fs.truncate(path.join(dir, 'x.jsonl'), 5);
  const err = (await verifyRef(ref).catch((e: unknown) => e)) as ApplicationFailure;
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'ArtifactChecksumMismatch', nonRetryable: true });
  expect(err.message).toContain(ref.uri);
  expect(err.message).toMatch(/changed on disk/);
});

test('abort() removes the temp file; a failed chunked write leaves nothing', async () => {
  const dir = tmp();
  const w = new AtomicJsonlWriter(path.join(dir, 'rows.jsonl'));
  for (let i = 0; i < 30_000; i++) await w.write({ i, pad: 'x'.repeat(50) }); // past the 1 MiB buffer: on disk
  expect(readdirSync(dir)).toHaveLength(1);
  await w.abort();
  await w.abort(); // twice is fine
  expect(readdirSync(dir)).toEqual([]);
  await expect(
    writeChunksAtomic(path.join(dir, 'b.txt'), (async function* () {
      yield 'half';
      throw new Error('ENOSPC: no space left on device');
    })()),
  ).rejects.toThrow(/ENOSPC/);
  expect(readdirSync(dir)).toEqual([]);
});

test('ensureWritableDir creates the directory, and a read-only one fails non-retryably naming it', async () => {
  const dir = tmp();
  await ensureWritableDir(path.join(dir, 'a', 'b'));
  expect(readdirSync(path.join(dir, 'a'))).toEqual(['b']);
  const access = fs.access.bind(fs);
  const spy = jest.spyOn(fs, 'access').mockImplementation(async (p, mode) => {
    if (String(p) === dir) throw Object.assign(new Error('EROFS'), { code: 'EROFS' });
    return access(p, mode);
  });
  try {
    const err = (await ensureWritableDir(path.join(dir, 'c', 'd')).catch((e: unknown) => e)) as ApplicationFailure;
    expect(err).toMatchObject({ type: 'ArtifactRootNotWritable', nonRetryable: true });
    expect(err.message).toContain(`${dir} (for ${path.join(dir, 'c', 'd')})`);
  } finally {
    spy.mockRestore();
  }
});

test.each<[string, number[]]>([
  ['a lone continuation byte', [0x80]],
  ['an overlong slash', [0xc0, 0xaf]],
  ['an overlong 3-byte form', [0xe0, 0x80, 0xaf]],
  ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
  ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ['a truncated sequence', [0xe2, 0x82]],
  ['0xff', [0xff]],
])('readJsonlLines flags %s as invalid UTF-8, with the offset of the bad byte', async (_name, bytes) => {
  const file = path.join(tmp(), 'x.jsonl');
  writeFileSync(file, Buffer.concat([Buffer.from('ok\nab€'), Buffer.from(bytes), Buffer.from('cd\n')]));
  const lines = [];
  for await (const l of readJsonlLines(file)) lines.push(l);
  expect(lines[0]).toEqual({ line: 1, text: 'ok' });
  expect(lines[1]).toMatchObject({ line: 2, invalidUtf8: 'line 2 is not valid UTF-8 (first bad byte at offset 5 of the line)' });
  expect(lines[1]!.text).toContain('\uFFFD');
});

test('readJsonlLines drops a leading BOM and CRs before LF, skips blank lines, keeps the last line without LF', async () => {
  const file = path.join(tmp(), 'x.jsonl');
  writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}\r\n\r\n  \n{"b":"\uFEFF"}\n{"c":3}')]));
  const lines = [];
  for await (const l of readJsonlLines(file)) lines.push(l);
  expect(lines).toEqual([
    { line: 1, text: '{"a":1}' },
    { line: 4, text: '{"b":"\uFEFF"}' },
    { line: 5, text: '{"c":3}' },
  ]);
});
