/**
 * JSONL rows with their byte offsets, so a row can be read back later by position (fs.readSync at an offset) instead
 * of being kept in memory: near-duplicate confirmation re-reads the few candidate documents it needs.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';

export interface LocatedRow<T> {
  row: T;
  /** Byte offset of the line in the file, and its length in bytes (without the newline). */
  offset: number;
  length: number;
}

/** Reads a JSONL file row by row with offsets (memory stays flat). Blank lines are skipped; CRLF is accepted. */
export async function* readJsonlLocated<T = unknown>(file: string): AsyncGenerator<LocatedRow<T>> {
  let carry: Buffer | undefined;
  let base = 0; // file offset of carry[0] (or of the chunk when there is no carry)
  let lineNo = 0;
  const parse = (buf: Buffer, start: number, end: number, offset: number): LocatedRow<T> | undefined => {
    lineNo += 1;
    let e = end;
    if (e > start && buf[e - 1] === 13) e--;
    const text = buf.toString('utf8', start, e);
    if (!text.trim()) return undefined;
    try {
      return { row: JSON.parse(text) as T, offset, length: e - start };
    } catch {
      throw new Error(`${file}:${lineNo}: not valid JSON`);
    }
  };
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    let buf = chunk as Buffer;
    if (carry) {
      buf = Buffer.concat([carry, buf]);
      carry = undefined;
    }
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      const r = parse(buf, start, nl, base + start);
      if (r) yield r;
      start = nl + 1;
    }
    base += start;
    if (start < buf.length) carry = buf.subarray(start);
  }
  if (carry && carry.length) {
    const r = parse(carry, 0, carry.length, base);
    if (r) yield r;
  }
}

/** Reads rows back by offset from files opened once. */
export class RowReader {
  private readonly fds = new Map<string, number>();
  private buf = Buffer.alloc(1 << 16);

  read<T>(file: string, offset: number, length: number): T {
    let fd = this.fds.get(file);
    if (fd === undefined) this.fds.set(file, (fd = openSync(file, 'r')));
    if (this.buf.length < length) this.buf = Buffer.alloc(Math.max(length, this.buf.length * 2));
    let got = 0;
    while (got < length) {
      const n = readSync(fd, this.buf, got, length - got, offset + got);
      if (n === 0) throw new Error(`${file}: short read at ${offset} (file changed?)`);
      got += n;
    }
    return JSON.parse(this.buf.toString('utf8', 0, length)) as T;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
