import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as readline from 'node:readline';
import type { ArtifactRef } from '../../schemas/artifact';

/** Where a run keeps its artifacts: `<artifactRoot>/<runId>/`. Workflow ids may hold '/', which we keep out of paths. */
export function runDirFor(artifactRoot: string, runId: string): string {
  return path.resolve(artifactRoot, runId.replace(/[^A-Za-z0-9._-]/g, '_'));
}

export function uriOf(file: string): string {
  return pathToFileURL(path.resolve(file)).href;
}

export function pathOf(refOrUri: ArtifactRef | string): string {
  const uri = typeof refOrUri === 'string' ? refOrUri : refOrUri.uri;
  if (!uri.startsWith('file:')) throw new Error(`Only file:// artifact URIs are supported, got ${uri}`);
  return fileURLToPath(uri);
}

function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Streams JSONL rows into a temp file beside the target and renames it into place on `finish()`.
 * A reader never sees a half-written artifact: either the old file (or none) or the complete new one.
 */
export class AtomicJsonlWriter {
  private handle: FileHandle | undefined;
  private readonly hash = createHash('sha256');
  private readonly temp: string;
  private buffer: string[] = [];
  private bufferedBytes = 0;
  count = 0;

  constructor(readonly target: string) {
    this.temp = tempPathFor(target);
  }

  async write(row: unknown): Promise<void> {
    if (!this.handle) {
      await fs.mkdir(path.dirname(this.target), { recursive: true });
      this.handle = await fs.open(this.temp, 'w');
    }
    const line = JSON.stringify(row) + '\n';
    this.buffer.push(line);
    this.bufferedBytes += line.length;
    this.count += 1;
    if (this.bufferedBytes >= 1 << 20) await this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.buffer.length || !this.handle) return;
    const chunk = this.buffer.join('');
    this.buffer = [];
    this.bufferedBytes = 0;
    this.hash.update(chunk);
    await this.handle.write(chunk);
  }

  async finish(): Promise<ArtifactRef> {
    if (!this.handle) {
      await fs.mkdir(path.dirname(this.target), { recursive: true });
      this.handle = await fs.open(this.temp, 'w');
    }
    await this.flush();
    await this.handle.sync();
    await this.handle.close();
    await fs.rename(this.temp, this.target);
    await fsyncDir(path.dirname(this.target));
    return { uri: uriOf(this.target), sha256: this.hash.digest('hex'), count: this.count };
  }

  async abort(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    await fs.rm(this.temp, { force: true });
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export async function writeJsonlAtomic(target: string, rows: Iterable<unknown> | AsyncIterable<unknown>): Promise<ArtifactRef> {
  const w = new AtomicJsonlWriter(target);
  try {
    for await (const row of rows as AsyncIterable<unknown>) await w.write(row);
    return await w.finish();
  } catch (err) {
    await w.abort();
    throw err;
  }
}

export async function writeJsonAtomic(target: string, value: unknown): Promise<ArtifactRef> {
  const text = JSON.stringify(value, null, 2) + '\n';
  return writeTextAtomic(target, text);
}

export async function writeTextAtomic(target: string, text: string): Promise<ArtifactRef> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const temp = tempPathFor(target);
  const h = await fs.open(temp, 'w');
  try {
    await h.write(text);
    await h.sync();
  } finally {
    await h.close();
  }
  await fs.rename(temp, target);
  return { uri: uriOf(target), sha256: createHash('sha256').update(text).digest('hex'), count: 1 };
}

/** Reads a JSONL artifact row by row (memory stays flat). Blank lines are skipped. */
export async function* readJsonl<T = unknown>(refOrPath: ArtifactRef | string): AsyncGenerator<T> {
  const file = typeof refOrPath === 'string' && !refOrPath.startsWith('file:') ? refOrPath : pathOf(refOrPath);
  const rl = readline.createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of rl) {
    lineNo += 1;
    if (!line.trim()) continue;
    try {
      yield JSON.parse(line) as T;
    } catch {
      throw new Error(`${file}:${lineNo}: not valid JSON`);
    }
  }
}

/** Recomputes an artifact's reference from disk (sha256 of the bytes, JSONL rows). */
export async function refOfFile(file: string): Promise<ArtifactRef> {
  const hash = createHash('sha256');
  let count = 0;
  await new Promise<void>((resolve, reject) => {
    createReadStream(file)
      .on('data', (chunk) => {
        const buf = chunk as Buffer;
        hash.update(buf);
        for (let i = 0; i < buf.length; i++) if (buf[i] === 10) count++;
      })
      .on('end', () => resolve())
      .on('error', reject);
  });
  return { uri: uriOf(file), sha256: hash.digest('hex'), count };
}

/** Checks that an artifact on disk is the one a reference names: a stage never reads a changed or partial input. */
export async function verifyRef(ref: ArtifactRef): Promise<void> {
  const actual = await refOfFile(pathOf(ref));
  if (actual.sha256 !== ref.sha256) {
    throw new Error(`Artifact ${ref.uri} changed on disk (sha256 ${actual.sha256.slice(0, 12)}…, expected ${ref.sha256.slice(0, 12)}…)`);
  }
}

export async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** Raw lines of a text file with their numbers, for sources that must report bad rows rather than stop on them. */
export async function* readJsonlLines(file: string): AsyncGenerator<{ line: number; text: string }> {
  const rl = readline.createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of rl) {
    line += 1;
    if (text.trim()) yield { line, text };
  }
}
