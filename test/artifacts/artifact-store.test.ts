import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AtomicJsonlWriter, readJsonl, refOfFile, verifyRef, writeJsonlAtomic } from '../../activities/artifacts/store';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'store-'));

test('a JSONL artifact appears only when complete, with its sha256 and row count', async () => {
  const dir = tmp();
  const target = path.join(dir, 'a', 'rows.jsonl');
  const w = new AtomicJsonlWriter(target);
  await w.write({ i: 1 });
  await w.write({ i: 2 });
  await expect(fs.access(target)).rejects.toThrow(); // not visible while being written
  const ref = await w.finish();
  expect(ref.count).toBe(2);
  expect(ref).toEqual(await refOfFile(target));
  const rows: unknown[] = [];
  for await (const r of readJsonl(ref)) rows.push(r);
  expect(rows).toEqual([{ i: 1 }, { i: 2 }]);
});

test('an aborted write leaves no file and no temp file behind', async () => {
  const dir = tmp();
  const target = path.join(dir, 'rows.jsonl');
  await expect(
    writeJsonlAtomic(target, (async function* () {
      yield { ok: 1 };
      throw new Error('disk on fire');
    })()),
  ).rejects.toThrow('disk on fire');
  expect(await fs.readdir(dir)).toEqual([]);
});

test('a changed artifact is caught before it is read', async () => {
  const dir = tmp();
  const ref = await writeJsonlAtomic(path.join(dir, 'x.jsonl'), [{ a: 1 }]);
  await fs.appendFile(path.join(dir, 'x.jsonl'), '{"a":2}\n');
  await expect(verifyRef(ref)).rejects.toThrow(/changed on disk/);
});
