import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface ArtifactEntry {
  path: string;
  bytes: number;
  /** A `.partial` shard or a temp file: written by work that was stopped; a retry or a new run picks it up. */
  partial: boolean;
}

/** What a run left on disk (for a cancelled run's record): files under the run dir, at most `limit` of them. */
export async function listArtifacts(input: { runDir: string; limit?: number }): Promise<{ files: ArtifactEntry[]; truncated: boolean }> {
  const limit = input.limit ?? 200;
  const files: ArtifactEntry[] = [];
  let truncated = false;
  async function walk(dir: string): Promise<void> {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (files.length < limit) files.push({ path: path.relative(input.runDir, full), bytes: (await fs.stat(full)).size, partial: /\.partial$|\.tmp$/.test(e.name) });
      else truncated = true;
    }
  }
  await walk(input.runDir);
  return { files, truncated };
}
