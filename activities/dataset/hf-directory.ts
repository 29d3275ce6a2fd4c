import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * The data files of one split of a local Hugging Face-style dataset directory (what `save_to_disk`'s siblings,
 * `push_to_hub` and hub snapshots lay out: `data/train-00000-of-00002.parquet`, `train.jsonl`, `test/part-0.jsonl`):
 * every .jsonl or .parquet file below it whose path names the split as a word, in name order.
 */
export async function hfDataFiles(dir: string, split: string): Promise<string[]> {
  const found: string[] = [];
  const word = new RegExp(`(^|[^A-Za-z0-9])${split.replace(/[.]/g, '\\.')}([^A-Za-z0-9]|$)`);
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 4) return;
    const entries = await fs.readdir(d, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full, depth + 1);
      else if (/\.(jsonl|parquet)$/.test(e.name) && word.test(path.relative(dir, full))) found.push(full);
    }
  };
  await walk(dir, 0);
  return found.sort();
}
