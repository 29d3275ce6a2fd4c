import { crc32 } from 'node:zlib';

/**
 * The teacher's per-token log-probabilities of one sample, stored beside the samples (soft targets for KD).
 *
 * File format: a sequence of frames, one per sample, each self-checking so that a torn or corrupted tail is found
 * and cut exactly like a torn JSONL line:
 *
 *   frame   = "LPS1" | u32 payload length | u32 crc32(payload) | payload            (little-endian)
 *   payload = u16 id length | id (UTF-8) | u32 tokens | u32 table size | table | u8 index width (2|4) | tokens
 *   table   = per distinct token of the sample: u8 flags (1 = special, stored by name) | u16 length | bytes
 *   token   = u8 alternatives | index | f32 logprob | alternatives × (index | f32 logprob)
 *
 * Tokens are kept as bytes (the API's `bytes`, else the UTF-8 of `token`), not ids: ids belong to the teacher's
 * tokenizer, which the API does not name. The trainer maps bytes onto the student's vocabulary and checks the mapping
 * (infra/trainer/logprobs_sidecar.py mirrors this reader).
 */
export interface TokenText {
  bytes: Buffer;
  /** A special token (end of text…) with no bytes of its own: `bytes` holds its name. */
  special?: boolean;
}

export interface TokenLogprob {
  token: TokenText;
  logprob: number;
  top: { token: TokenText; logprob: number }[];
}

export interface SampleLogprobs {
  id: string;
  tokens: TokenLogprob[];
}

const MAGIC = Buffer.from('LPS1', 'latin1');
const HEADER = 12;

export function encodeSampleLogprobs(rec: SampleLogprobs): Buffer {
  const table = new Map<string, number>();
  const entries: TokenText[] = [];
  const indexOf = (t: TokenText) => {
    const key = `${t.special ? 's' : 'b'}${t.bytes.toString('hex')}`;
    let i = table.get(key);
    if (i === undefined) {
      i = entries.length;
      table.set(key, i);
      entries.push(t);
    }
    return i;
  };
  const idx = rec.tokens.map((t) => ({ chosen: indexOf(t.token), top: t.top.map((a) => indexOf(a.token)) }));
  const width = entries.length > 0xffff ? 4 : 2;
  const id = Buffer.from(rec.id, 'utf8');
  let size = 2 + id.length + 4 + 4 + 1;
  for (const e of entries) {
    if (e.bytes.length > 0xffff) throw new Error(`sample ${rec.id}: a token of ${e.bytes.length} bytes`);
    size += 3 + e.bytes.length;
  }
  for (const t of rec.tokens) {
    if (t.top.length > 255)
      throw new Error(`sample ${rec.id}: ${t.top.length} alternatives for one token (at most 255)`);
    size += 1 + (width + 4) * (1 + t.top.length);
  }
  const p = Buffer.alloc(size);
  let o = 0;
  o = p.writeUInt16LE(id.length, o);
  o += id.copy(p, o);
  o = p.writeUInt32LE(rec.tokens.length, o);
  o = p.writeUInt32LE(entries.length, o);
  for (const e of entries) {
    o = p.writeUInt8(e.special ? 1 : 0, o);
    o = p.writeUInt16LE(e.bytes.length, o);
    o += e.bytes.copy(p, o);
  }
  o = p.writeUInt8(width, o);
  const writeIndex = (i: number) => (o = width === 2 ? p.writeUInt16LE(i, o) : p.writeUInt32LE(i, o));
  rec.tokens.forEach((t, j) => {
    o = p.writeUInt8(t.top.length, o);
    writeIndex(idx[j]!.chosen);
    o = p.writeFloatLE(t.logprob, o);
    t.top.forEach((a, m) => {
      writeIndex(idx[j]!.top[m]!);
      o = p.writeFloatLE(a.logprob, o);
    });
  });
  const head = Buffer.alloc(HEADER);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(p.length, 4);
  head.writeUInt32LE(crc32(p), 8);
  return Buffer.concat([head, p]);
}

export function decodeSampleLogprobs(frame: Buffer): SampleLogprobs {
  const p = frame.subarray(HEADER);
  let o = 0;
  const idLen = p.readUInt16LE(o);
  o += 2;
  const id = p.toString('utf8', o, o + idLen);
  o += idLen;
  const n = p.readUInt32LE(o);
  const tableSize = p.readUInt32LE(o + 4);
  o += 8;
  const table: TokenText[] = [];
  for (let i = 0; i < tableSize; i++) {
    const special = p.readUInt8(o) === 1;
    const len = p.readUInt16LE(o + 1);
    table.push({ bytes: Buffer.from(p.subarray(o + 3, o + 3 + len)), ...(special ? { special } : {}) });
    o += 3 + len;
  }
  const width = p.readUInt8(o);
  o += 1;
  const readIndex = () => {
    const i = width === 2 ? p.readUInt16LE(o) : p.readUInt32LE(o);
    o += width;
    return table[i]!;
  };
  const tokens: TokenLogprob[] = [];
  for (let j = 0; j < n; j++) {
    const k = p.readUInt8(o);
    o += 1;
    const token = readIndex();
    const logprob = p.readFloatLE(o);
    o += 4;
    const top: TokenLogprob['top'] = [];
    for (let m = 0; m < k; m++) {
      const t = readIndex();
      top.push({ token: t, logprob: p.readFloatLE(o) });
      o += 4;
    }
    tokens.push({ token, logprob, top });
  }
  return { id, tokens };
}

export interface FrameLocation {
  id: string;
  offset: number;
  length: number;
}

/**
 * The complete, checksum-valid frames at the start of `buf`, and where they end: everything after `validBytes` is a
 * torn or corrupted tail (a kill mid-append) that a resumed writer cuts before appending.
 */
export function scanFrames(buf: Buffer): { frames: FrameLocation[]; validBytes: number } {
  const frames: FrameLocation[] = [];
  let o = 0;
  while (o + HEADER <= buf.length) {
    if (!buf.subarray(o, o + 4).equals(MAGIC)) break;
    const len = buf.readUInt32LE(o + 4);
    if (o + HEADER + len > buf.length) break;
    const payload = buf.subarray(o + HEADER, o + HEADER + len);
    if (crc32(payload) !== buf.readUInt32LE(o + 8)) break;
    const idLen = payload.readUInt16LE(0);
    frames.push({ id: payload.toString('utf8', 2, 2 + idLen), offset: o, length: HEADER + len });
    o += HEADER + len;
  }
  return { frames, validBytes: o };
}

/** A file that must be whole: any byte after the last valid frame is corruption, not a torn append. */
export function scanWholeFile(buf: Buffer, file: string): FrameLocation[] {
  const { frames, validBytes } = scanFrames(buf);
  if (validBytes !== buf.length)
    throw new Error(
      `${file}: logprobs sidecar is corrupt at byte ${validBytes} of ${buf.length} (checksum or framing)`,
    );
  return frames;
}

/** The completion-token count a record covers (for bytes-per-token accounting). */
export function tokenCount(frame: Buffer): number {
  const idLen = frame.readUInt16LE(HEADER);
  return frame.readUInt32LE(HEADER + 2 + idLen);
}

/** Parses one choice's `logprobs.content` of an OpenAI chat completion; undefined when the reply carries none. */
export function fromOpenAILogprobs(content: unknown): TokenLogprob[] | undefined {
  if (!Array.isArray(content)) return undefined;
  return content.map((c: { token?: unknown; bytes?: unknown; logprob?: unknown; top_logprobs?: unknown }) => ({
    token: tokenText(c),
    logprob: Number(c.logprob),
    top: Array.isArray(c.top_logprobs)
      ? c.top_logprobs.map((a: { token?: unknown; bytes?: unknown; logprob?: unknown }) => ({
          token: tokenText(a),
          logprob: Number(a.logprob),
        }))
      : [],
  }));
}

function tokenText(t: { token?: unknown; bytes?: unknown }): TokenText {
  if (Array.isArray(t.bytes)) return { bytes: Buffer.from(t.bytes as number[]) };
  const name = Buffer.from(typeof t.token === 'string' ? t.token : '', 'utf8');
  // An explicit `bytes: null` marks a special token (it has a name, no text).
  return t.bytes === null ? { bytes: name, special: true } : { bytes: name };
}
