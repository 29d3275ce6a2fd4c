import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { SampleRow } from '../../schemas/artifact';
import { completeLines } from '../artifacts/complete-lines';
import { writeChunksOnce } from '../artifacts/store';
import { isStopRecord, type StopRecord } from './adaptive-sampling';

/**
 * The files in which the attempts of one shard keep the samples they have written.
 *
 * Two attempts of a shard can run at once: an attempt outlives its heartbeat timeout (a worker cut off from the
 * server keeps going) while Temporal starts the next one. So each attempt appends only to a file of its own,
 * `<shard>.attempt-<n>-<random>.partial`, and reads everyone's; no attempt ever truncates, rewrites or deletes a file
 * another one may still be appending to before the shard is committed. The shard is committed once, from the union of
 * the files by sample id, and never replaced: a second attempt that finishes later finds it and reports it as it is.
 * A `<shard>.partial` (one file shared by all attempts, as earlier versions wrote) is read like any attempt's file.
 */

/** Where the shard's expected samples go: the prompt's position in the shard and the sample's index. */
export interface ExpectedSample {
  position: number;
  sampleIndex: number;
}

interface IndexedSample extends ExpectedSample {
  source: number;
  start: number;
  end: number;
  promptTokens: number;
  completionTokens: number;
}

export interface AttemptIndex {
  /** Expected sample id → where its first complete line is. */
  samples: Map<string, IndexedSample>;
  /** Complete lines that do not parse as a sample (not torn: a torn last line is not a line yet). */
  corrupt: number;
  /** Samples whose id the shard does not expect (another generation config). */
  foreign: number;
  /** Lines of an id already found in an earlier line or file. */
  duplicates: number;
  /** Adaptive sampling's stop records, by `promptId@configHash` (the first one found wins, like samples). */
  stops: Map<string, StopRecord>;
  /** A file listed had gone when opened: an attempt that committed the shard has cleaned up. */
  vanished: boolean;
  promptTokens: number;
  completionTokens: number;
  /** The attempt files, open for positional reads of the indexed lines. */
  sources: FileHandle[];
  /** Their paths, in the same order. */
  files: string[];
  close(): Promise<void>;
}

/** A new file for this attempt's samples; the random part keeps two executions with one attempt number apart. */
export function attemptFileFor(shard: string, attempt: number): string {
  return `${shard}.attempt-${attempt}-${randomBytes(4).toString('hex')}.partial`;
}

/** The shard's attempt files in the order their samples take precedence: the shared file, then by attempt number. */
export async function attemptFiles(shard: string): Promise<string[]> {
  const base = path.basename(shard);
  const names = await fs.readdir(path.dirname(shard)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const found: { name: string; attempt: number }[] = [];
  for (const name of names) {
    if (name === `${base}.partial`) found.push({ name, attempt: 0 });
    else {
      const m = name.startsWith(`${base}.`)
        ? /^\.attempt-(\d+)-[0-9a-f]+\.partial$/.exec(name.slice(base.length))
        : null;
      if (m) found.push({ name, attempt: Number(m[1]) });
    }
  }
  found.sort((a, b) => a.attempt - b.attempt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return found.map((f) => path.join(path.dirname(shard), f.name));
}

/** Removes every attempt file of a shard that is committed; files already gone are fine. */
export async function removeAttemptFiles(shard: string): Promise<void> {
  for (const f of await attemptFiles(shard)) await fs.rm(f, { force: true });
}

/**
 * Reads every attempt file of the shard, streaming, and indexes the first complete line of each expected sample id.
 * The files stay open (positional reads of the lines for the commit) until `close()`.
 */
export async function indexAttempts(
  shard: string,
  expected: ReadonlyMap<string, ExpectedSample>,
): Promise<AttemptIndex> {
  const handles: FileHandle[] = [];
  const files: string[] = [];
  const index: AttemptIndex = {
    sources: handles,
    files,
    samples: new Map(),
    stops: new Map(),
    corrupt: 0,
    foreign: 0,
    duplicates: 0,
    vanished: false,
    promptTokens: 0,
    completionTokens: 0,
    close: async () => {
      for (const h of handles.splice(0)) await h.close().catch(() => undefined);
    },
  };
  try {
    for (const file of await attemptFiles(shard)) {
      const h = await fs.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      if (!h) {
        index.vanished = true;
        continue;
      }
      const source = handles.push(h) - 1;
      files.push(file);
      for await (const line of completeLines(h)) {
        if (!line.bytes.length) continue;
        let row: Partial<SampleRow>;
        try {
          row = JSON.parse(line.bytes.toString('utf8')) as Partial<SampleRow>;
        } catch {
          index.corrupt += 1;
          continue;
        }
        if (isStopRecord(row)) {
          const key = `${row.stopped.promptId}@${row.stopped.configHash}`;
          if (!index.stops.has(key)) index.stops.set(key, row);
          continue;
        }
        const want = typeof row?.id === 'string' ? expected.get(row.id) : undefined;
        if (!want) {
          if (row && typeof row === 'object' && typeof row.id === 'string') index.foreign += 1;
          else index.corrupt += 1;
          continue;
        }
        if (index.samples.has(row.id!)) {
          index.duplicates += 1;
          continue;
        }
        const promptTokens = Number(row.usage?.promptTokens) || 0;
        const completionTokens = Number(row.usage?.completionTokens) || 0;
        index.samples.set(row.id!, {
          ...want,
          source,
          start: line.start,
          end: line.end,
          promptTokens,
          completionTokens,
        });
        index.promptTokens += promptTokens;
        index.completionTokens += completionTokens;
      }
    }
  } catch (err) {
    await index.close();
    throw err;
  }
  return index;
}

/** The indexed line of a sample, as written (with its newline). */
export async function readIndexedLine(index: AttemptIndex, id: string): Promise<Buffer | undefined> {
  const l = index.samples.get(id);
  if (!l) return undefined;
  const buf = Buffer.allocUnsafe(l.end - l.start);
  const { bytesRead } = await index.sources[l.source]!.read(buf, 0, buf.length, l.start);
  if (bytesRead !== buf.length)
    throw new Error(`attempt file ${index.files[l.source]} is shorter than when it was read (line at ${l.start})`);
  return buf;
}

/**
 * Commits the shard from the indexed lines, in a fixed order (prompt position, then sample index), unless it exists.
 * Returns whether this call created it. The lines are copied byte for byte from the attempt files.
 */
export async function commitShard(shard: string, index: AttemptIndex): Promise<boolean> {
  const lines = [...index.samples.values()].sort((a, b) => a.position - b.position || a.sampleIndex - b.sampleIndex);
  const sources = index.sources;
  return writeChunksOnce(
    shard,
    (async function* () {
      let chunk: Buffer[] = [];
      let size = 0;
      for (const l of lines) {
        const buf = Buffer.allocUnsafe(l.end - l.start);
        const { bytesRead } = await sources[l.source]!.read(buf, 0, buf.length, l.start);
        if (bytesRead !== buf.length)
          throw new Error(`attempt file of ${shard} is shorter than when it was read (line at ${l.start})`);
        chunk.push(buf);
        size += buf.length;
        if (size >= 1 << 20) {
          yield Buffer.concat(chunk);
          chunk = [];
          size = 0;
        }
      }
      if (chunk.length) yield Buffer.concat(chunk);
    })(),
  );
}

/**
 * The attempt's own file. Whole lines only, one batch at a time (concurrent request lanes queue here), each written
 * to the end by positional writes repeated until every byte is down: a line is never split by another write,
 * whatever its size. After a failed write nothing more is appended, so a torn line can only be the file's last.
 */
export class AttemptWriter {
  private tail: Promise<void> = Promise.resolve();
  private size = 0;
  private failure: unknown;

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(file: string): Promise<AttemptWriter> {
    return new AttemptWriter(file, await fs.open(file, 'wx'));
  }

  append(lines: string | Buffer): Promise<void> {
    const buf = typeof lines === 'string' ? Buffer.from(lines) : lines;
    const run = this.tail.then(() => this.writeAll(buf));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async writeAll(buf: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      for (let done = 0; done < buf.length;) {
        const { bytesWritten } = await this.handle.write(buf, done, buf.length - done, this.size + done);
        if (!bytesWritten) throw new Error('the file system accepted no bytes');
        done += bytesWritten;
      }
      this.size += buf.length;
    } catch (err) {
      // A write error (ENOSPC, EIO) names no file: say which. The attempt fails; a retry reads what is here.
      if (err instanceof Error && !err.message.includes(this.file)) err.message += ` (appending to ${this.file})`;
      this.failure = err;
      throw err;
    }
  }

  async sync(): Promise<void> {
    await this.tail;
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.tail;
    await this.handle.close();
  }
}
