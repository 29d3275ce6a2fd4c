import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as readline from 'node:readline';
import { ApplicationFailure } from '@temporalio/common';
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
    if (!this.handle) await this.open();
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
    await this.handle.writeFile(chunk).catch((err: unknown) => {
      throw withPath(err, this.target);
    });
  }

  private async open(): Promise<void> {
    try {
      await fs.mkdir(path.dirname(this.target), { recursive: true });
      this.handle = await fs.open(this.temp, 'w');
    } catch (err) {
      throw notWritable(err, path.dirname(this.target)) ?? err;
    }
  }

  /**
   * Flushes, fsyncs and renames the temp file into place. When any of that fails (a full disk, an I/O error) the
   * temp file is removed: a failed writer leaves nothing behind, neither a partial artifact nor the space it held.
   */
  async finish(): Promise<ArtifactRef> {
    try {
      if (!this.handle) await this.open();
      const handle = this.handle!;
      await this.flush();
      await handle.sync().catch((err: unknown) => {
        throw withPath(err, this.target);
      });
      this.handle = undefined;
      await handle.close();
      await fs.rename(this.temp, this.target);
    } catch (err) {
      await this.abort();
      throw err;
    }
    await fsyncDir(path.dirname(this.target));
    return { uri: uriOf(this.target), sha256: this.hash.digest('hex'), count: this.count };
  }

  /** Gives up on the artifact: closes and removes the temp file (the target is left as it was). Never throws. */
  async abort(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    this.buffer = [];
    this.bufferedBytes = 0;
    await handle?.close().catch(() => undefined);
    await fs.rm(this.temp, { force: true }).catch(() => undefined);
  }
}

/** Write errors (ENOSPC, EIO) carry no path in Node: add the artifact being written to the message. */
function withPath(err: unknown, target: string): unknown {
  if (err instanceof Error && (err as NodeJS.ErrnoException).code && !err.message.includes(target)) err.message += ` (writing ${target})`;
  return notWritable(err, path.dirname(target)) ?? err;
}

const NOT_WRITABLE = new Set(['EROFS', 'EACCES', 'EPERM']);

/** A non-retryable failure for an artifact directory that cannot be written (read-only or no permission), else null. */
function notWritable(err: unknown, dir: string): ApplicationFailure | null {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (!code || !NOT_WRITABLE.has(code)) return null;
  const why = code === 'EROFS' ? 'is on a read-only file system' : 'is not writable by the worker (permission denied)';
  return ApplicationFailure.create({
    message: `Artifact directory ${dir} ${why} (${code}). Point artifactRoot at a writable directory that every worker sees, or fix the mount.`,
    type: 'ArtifactRootNotWritable',
    nonRetryable: true,
  });
}

/**
 * Checks up front that `dir` (an artifact root or a run directory under it) can be written, creating it if needed:
 * a read-only or permission-denied root fails at once with a non-retryable `ArtifactRootNotWritable` that names the
 * path, instead of a misleading ENOENT from the first write several retries later. Writes nothing but the directory.
 */
export async function ensureWritableDir(dir: string): Promise<void> {
  const target = path.resolve(dir);
  // the nearest ancestor that exists: where the first mkdir would have to write
  let existing = target;
  for (;;) {
    try {
      await fs.stat(existing);
      break;
    } catch (err) {
      const parent = path.dirname(existing);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === existing) throw notWritable(err, existing) ?? err;
      existing = parent;
    }
  }
  try {
    await fs.access(existing, fsConstants.W_OK);
    await fs.mkdir(target, { recursive: true });
  } catch (err) {
    throw notWritable(err, existing === target ? target : `${existing} (for ${target})`) ?? err;
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
  await writeChunksAtomic(target, (async function* () {
    yield text;
  })());
  return { uri: uriOf(target), sha256: createHash('sha256').update(text).digest('hex'), count: 1 };
}

/** Writes a file from chunks atomically (temp file + fsync + rename); a failed write leaves no temp file behind. */
export async function writeChunksAtomic(target: string, chunks: AsyncIterable<Buffer | string>): Promise<void> {
  const temp = await writeTempBeside(target, chunks);
  try {
    await fs.rename(temp, target);
  } catch (err) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Errors of link(2) on file systems that have no hard links (some FUSE and SMB mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * Like writeChunksAtomic, but a target that exists is never replaced: the complete temp file is hard-linked into
 * place, which fails with EEXIST when another writer got there first. Returns whether this call created the target.
 * Two writers racing to produce one artifact thus agree on a single file, and a reference either hands out stays true.
 * Where the file system has no hard links it falls back to a rename when the target is absent (a narrow race).
 */
export async function writeChunksOnce(target: string, chunks: AsyncIterable<Buffer | string>): Promise<boolean> {
  const temp = await writeTempBeside(target, chunks);
  let created = false;
  try {
    await fs.link(temp, target);
    created = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (NO_HARD_LINKS.has(code) && !(await exists(target))) {
      await fs.rename(temp, target).catch(async (e: unknown) => {
        await fs.rm(temp, { force: true }).catch(() => undefined);
        throw e;
      });
      created = true;
    } else if (code !== 'EEXIST' && !NO_HARD_LINKS.has(code)) {
      await fs.rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
  }
  await fs.rm(temp, { force: true }).catch(() => undefined);
  if (created) await fsyncDir(path.dirname(target));
  return created;
}

/** The chunks in a new temp file beside `target`, fsynced; a failed write leaves no temp file behind. */
async function writeTempBeside(target: string, chunks: AsyncIterable<Buffer | string>): Promise<string> {
  const temp = tempPathFor(target);
  let h: FileHandle;
  try {
    await fs.mkdir(path.dirname(target), { recursive: true });
    h = await fs.open(temp, 'w');
  } catch (err) {
    throw notWritable(err, path.dirname(target)) ?? err;
  }
  try {
    try {
      // writeFile on a handle writes the whole chunk from the current position (a plain write may be short)
      for await (const c of chunks) await h.writeFile(c);
      await h.sync();
    } finally {
      await h.close();
    }
  } catch (err) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
  return temp;
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
    // Artifacts are written once, atomically, and never rewritten with other content: a mismatch will not heal by
    // retrying (a truncated copy, a hand edit, a restore from elsewhere). Fail the stage at once and say so.
    throw ApplicationFailure.create({
      message: `Artifact ${ref.uri} changed on disk after it was written (sha256 ${actual.sha256.slice(0, 12)}…, ${actual.count} lines; expected ${ref.sha256.slice(0, 12)}…, ${ref.count} rows): it is truncated or was modified, and will not be read. Restore it or rerun the stage that wrote it.`,
      type: 'ArtifactChecksumMismatch',
      nonRetryable: true,
    });
  }
}

export async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** A line of a text source: its text, or (`invalidUtf8` set) a lossy decoding of bytes that are not valid UTF-8. */
export type SourceLine = { line: number; text: string; invalidUtf8?: undefined } | { line: number; text: string; invalidUtf8: string };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lossyUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * Raw lines of a text file with their numbers, for sources that must report bad rows rather than stop on them.
 * Lines are split on bytes (LF, with an optional CR before it) and each is decoded strictly: a line that is not valid
 * UTF-8 comes back with `invalidUtf8` (where the first bad byte is) and a lossy text, never silently with U+FFFD.
 * A UTF-8 byte order mark at the start of the file is dropped. Blank lines are skipped (but counted).
 */
export async function* readJsonlLines(file: string): AsyncGenerator<SourceLine> {
  let line = 0;
  const emit = (bytes: Buffer): SourceLine | null => {
    line += 1;
    if (line === 1 && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    if (bytes.length && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, bytes.length - 1);
    let text: string;
    try {
      text = strictUtf8.decode(bytes);
    } catch {
      text = lossyUtf8.decode(bytes);
      return { line, text, invalidUtf8: `line ${line} is not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(bytes)} of the line)` };
    }
    return text.trim() ? { line, text } : null;
  };
  let pending: Buffer[] = [];
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const part = chunk.subarray(start, nl);
      const out = emit(pending.length ? Buffer.concat([...pending, part]) : part);
      pending = [];
      start = nl + 1;
      if (out) yield out;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length) {
    const out = emit(Buffer.concat(pending));
    if (out) yield out;
  }
}

/** Byte offset of the first byte that breaks UTF-8 in `bytes` (its length when there is none), for the message. */
function firstInvalidUtf8(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i += 1;
      continue;
    }
    const more = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (more < 0 || i + more >= bytes.length) return i;
    for (let k = 1; k <= more; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    const c1 = bytes[i + 1]!;
    // overlong forms, UTF-16 surrogates, beyond U+10FFFF
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f) || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return i;
    i += more + 1;
  }
  return bytes.length;
}
