import { promises as fs } from 'node:fs';
import { exists, readJsonl, writeChunksAtomic } from '../artifacts/store';
import { crc32 } from 'node:zlib';
import { scanFrames, scanWholeFile, tokenCount, type FrameLocation } from './logprobs-sidecar';

/**
 * Sidecar files beside JSONL samples: one frame per sample, in the samples' order. The writer appends frames to a
 * .partial while samples are generated (a frame before its sample line, so a kept sample always has its frame); the
 * finished sidecar is rewritten in the finished samples' order, one frame per sample: nothing duplicated, none lost.
 */

export interface SidecarStats {
  records: number;
  tokens: number;
  bytes: number;
}

/** Cuts a torn or corrupt tail of an appended sidecar (a kill mid-write) so appends start clean. */
export async function recoverSidecarPartial(partial: string): Promise<void> {
  if (!(await exists(partial))) return;
  const buf = await fs.readFile(partial);
  const { validBytes } = scanFrames(buf);
  if (validBytes !== buf.length) await fs.truncate(partial, validBytes);
}

/** Ids in the order of a JSONL file's rows (each row has an `id`). */
export async function idsOf(jsonl: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const row of readJsonl<{ id: string }>(jsonl)) ids.push(row.id);
  return ids;
}

/**
 * Writes `target` with exactly one frame per id, in `ids` order, taken from `sources` (later frames of one id win:
 * a sample redone after a crash wrote its frame again, and its sample line follows the newer frame). An id with no
 * frame is an error: its sample would train without its soft targets.
 */
export async function writeAlignedSidecar(
  target: string,
  ids: readonly string[],
  sources: readonly string[],
  opts: { tolerateTornTail?: boolean; sourceOf?: (id: string) => number | undefined } = {},
): Promise<SidecarStats> {
  const bufs = await Promise.all(
    sources.map((f) =>
      fs
        .readFile(f)
        .catch((err: NodeJS.ErrnoException) =>
          opts.sourceOf && err.code === 'ENOENT' ? Buffer.alloc(0) : Promise.reject(err),
        ),
    ),
  );
  // With sourceOf, an id's frame is taken only from the file its sample line was taken from (the frame written with it).
  const where = new Map<string, { buf: Buffer; at: FrameLocation }>();
  bufs.forEach((buf, i) => {
    const frames = opts.tolerateTornTail ? scanFrames(buf).frames : scanWholeFile(buf, sources[i]!);
    for (const at of frames) if (!opts.sourceOf || opts.sourceOf(at.id) === i) where.set(at.id, { buf, at });
  });
  const stats: SidecarStats = { records: 0, tokens: 0, bytes: 0 };
  const missing = ids.filter((id) => !where.has(id));
  if (missing.length) {
    throw new Error(
      `${missing.length} of ${ids.length} samples have no logprobs record in ${sources.join(', ')} (first: ${missing[0]})`,
    );
  }
  await writeChunksAtomic(
    target,
    (async function* () {
      for (const id of ids) {
        const { buf, at } = where.get(id)!;
        const frame = buf.subarray(at.offset, at.offset + at.length);
        stats.records += 1;
        stats.bytes += frame.length;
        stats.tokens += tokenCount(frame);
        yield frame;
      }
    })(),
  );
  return stats;
}

/** Record, token and byte counts of a finished sidecar (and a check that it is whole). */
export async function sidecarStats(file: string): Promise<SidecarStats> {
  const buf = await fs.readFile(file);
  const frames = scanWholeFile(buf, file);
  return {
    records: frames.length,
    tokens: frames.reduce((t, f) => t + tokenCount(buf.subarray(f.offset, f.offset + f.length)), 0),
    bytes: buf.length,
  };
}

/**
 * Random access to a finished sidecar by sample id without holding it in memory (a run's sidecar can be gigabytes):
 * the index keeps each frame's offset and length; a frame's checksum is checked when it is read.
 */
export class SidecarIndex {
  private constructor(
    private readonly fh: fs.FileHandle,
    readonly file: string,
    readonly frames: Map<string, FrameLocation>,
  ) {}

  static async open(file: string): Promise<SidecarIndex> {
    const fh = await fs.open(file, 'r');
    try {
      const size = (await fh.stat()).size;
      const frames = new Map<string, FrameLocation>();
      const head = Buffer.alloc(14);
      let o = 0;
      while (o < size) {
        const { bytesRead } = await fh.read(head, 0, 14, o);
        if (bytesRead < 14 || head.toString('latin1', 0, 4) !== 'LPS1')
          throw new Error(`${file}: logprobs sidecar is corrupt at byte ${o} (framing)`);
        const length = 12 + head.readUInt32LE(4);
        if (o + length > size) throw new Error(`${file}: logprobs sidecar is cut short at byte ${o}`);
        const id = Buffer.alloc(head.readUInt16LE(12));
        await fh.read(id, 0, id.length, o + 14);
        const key = id.toString('utf8');
        if (frames.has(key)) throw new Error(`${file}: two logprobs records for sample ${key}`);
        frames.set(key, { id: key, offset: o, length });
        o += length;
      }
      return new SidecarIndex(fh, file, frames);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async read(id: string): Promise<Buffer | undefined> {
    const at = this.frames.get(id);
    if (!at) return undefined;
    const buf = Buffer.alloc(at.length);
    await this.fh.read(buf, 0, at.length, at.offset);
    if (crc32(buf.subarray(12)) !== buf.readUInt32LE(8))
      throw new Error(`${this.file}: checksum mismatch in the record of sample ${id}`);
    return buf;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/**
 * Concatenates per-shard sidecars (each already in its shard's order) into one, checking record for record that it
 * follows `idsInOrder`. One shard is in memory at a time.
 */
export async function concatSidecars(
  target: string,
  shards: { sidecar: string; ids: string[] }[],
): Promise<SidecarStats> {
  const stats: SidecarStats = { records: 0, tokens: 0, bytes: 0 };
  await writeChunksAtomic(
    target,
    (async function* () {
      for (const s of shards) {
        const buf = await fs.readFile(s.sidecar);
        const frames = scanWholeFile(buf, s.sidecar);
        if (frames.length !== s.ids.length || frames.some((f, i) => f.id !== s.ids[i])) {
          throw new Error(
            `${s.sidecar} does not follow its shard's samples (${frames.length} records for ${s.ids.length} samples)`,
          );
        }
        for (const f of frames) stats.tokens += tokenCount(buf.subarray(f.offset, f.offset + f.length));
        stats.records += frames.length;
        stats.bytes += buf.length;
        yield buf;
      }
    })(),
  );
  return stats;
}

/**
 * The training sidecar: one record per kept row, in the SFT file's order, from the run's sidecar. A sample the
 * verifier or the filters dropped leaves its record behind (counted in `dropped`).
 */
export async function alignSidecarTo(
  target: string,
  ids: readonly string[],
  source: string,
): Promise<SidecarStats & { dropped: number; missing: string[] }> {
  const index = await SidecarIndex.open(source);
  const stats = { records: 0, tokens: 0, bytes: 0, dropped: 0, missing: [] as string[] };
  try {
    stats.missing = ids.filter((id) => !index.frames.has(id));
    if (stats.missing.length) return stats;
    await writeChunksAtomic(
      target,
      (async function* () {
        for (const id of ids) {
          const frame = (await index.read(id))!;
          stats.records += 1;
          stats.bytes += frame.length;
          stats.tokens += tokenCount(frame);
          yield frame;
        }
      })(),
    );
    stats.dropped = index.frames.size - stats.records;
    return stats;
  } finally {
    await index.close();
  }
}
