import type { FileHandle } from 'node:fs/promises';

export interface CompleteLine {
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just after its '\n'. */
  end: number;
  /** The line without its '\n'; valid only until the next line is asked for (the read buffer is reused). */
  bytes: Buffer;
}

/**
 * The complete lines of a file that a writer may still be appending to: every line ended by '\n', read by position
 * in chunks, so memory holds one chunk and the longest line, never the file. Bytes after the last '\n' are a line
 * still being written, or one whose writer died mid-write; either way they are not a line yet and are left alone.
 * Lines are split on bytes, so a multi-byte character across a chunk boundary is never cut.
 */
export async function* completeLines(file: FileHandle, chunkBytes = 1 << 20): AsyncGenerator<CompleteLine> {
  const chunk = Buffer.allocUnsafe(chunkBytes);
  let pos = 0;
  let lineStart = 0;
  let pending: Buffer[] = [];
  for (;;) {
    const { bytesRead } = await file.read(chunk, 0, chunkBytes, pos);
    if (!bytesRead) return;
    const view = chunk.subarray(0, bytesRead);
    let from = 0;
    for (let nl = view.indexOf(10, from); nl !== -1; nl = view.indexOf(10, from)) {
      const part = view.subarray(from, nl);
      const bytes = pending.length ? Buffer.concat([...pending, part]) : part;
      pending = [];
      const end = pos + nl + 1;
      yield { start: lineStart, end, bytes };
      lineStart = end;
      from = nl + 1;
    }
    // the chunk buffer is reused for the next read: keep a copy of the unfinished line
    if (from < bytesRead) pending.push(Buffer.from(view.subarray(from)));
    pos += bytesRead;
  }
}
