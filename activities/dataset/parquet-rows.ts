import type * as Hyparquet from 'hyparquet';
import type * as HyparquetCompressors from 'hyparquet-compressors';

/**
 * Rows of a Parquet file as plain JSON-like objects, one row group at a time (memory stays at one row group, as a
 * JSONL reader's stays at one line). Read by hyparquet (pure JS, every Parquet encoding) with hyparquet-compressors
 * (snappy, gzip, zstd, brotli, lz4): Hugging Face datasets and pandas/pyarrow files read as written.
 * Values are made JSON-safe: 64-bit integers become numbers when exact (strings otherwise), dates ISO strings,
 * byte arrays base64.
 */

/** The file is not Parquet, or not readable as Parquet (the message names the file and what is wrong). */
export class ParquetFileError extends Error {
  override name = 'ParquetFileError';
}

// hyparquet is an ES module; this project compiles to CommonJS, whose import() TypeScript would turn into require().
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;
// Node's entry point of hyparquet adds asyncBufferFromFile (the types this compiler resolves are the browser's).
type HyparquetNode = typeof Hyparquet & { asyncBufferFromFile(file: string): Promise<Hyparquet.AsyncBuffer> };
let modules: Promise<{ hp: HyparquetNode; compressors: typeof HyparquetCompressors.compressors }> | null = null;
function load() {
  modules ??= Promise.all([
    importEsm('hyparquet') as Promise<HyparquetNode>,
    importEsm('hyparquet-compressors') as Promise<typeof HyparquetCompressors>,
  ])
    .then(([hp, c]) => ({ hp, compressors: c.compressors }))
    .catch((e: unknown) => {
      modules = null;
      if (e instanceof Error && /experimental-vm-modules/.test(e.message)) {
        throw new Error(
          'hyparquet is an ES module and cannot be imported inside a VM sandbox such as jest: read Parquet in a worker process',
        );
      }
      throw e;
    });
  return modules;
}

export function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint')
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  return v;
}

/** Yields { row: 1-based row number, value: the row object } for every row of the file. */
export async function* readParquetRows(file: string): AsyncGenerator<{ row: number; value: Record<string, unknown> }> {
  const { hp, compressors } = await load();
  let buffer: Hyparquet.AsyncBuffer;
  let metadata: Hyparquet.FileMetaData;
  try {
    buffer = await hp.asyncBufferFromFile(file);
    metadata = await hp.parquetMetadataAsync(buffer);
  } catch (err) {
    throw new ParquetFileError(`${file} is not a readable Parquet file: ${(err as Error).message}`);
  }
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = (await hp.parquetReadObjects({
        file: buffer,
        metadata,
        compressors,
        rowStart: start,
        rowEnd: end,
      })) as Record<string, unknown>[];
    } catch (err) {
      throw new ParquetFileError(`${file}: rows ${start + 1}–${end} cannot be decoded: ${(err as Error).message}`);
    }
    for (let i = 0; i < rows.length; i++)
      yield { row: start + i + 1, value: jsonSafe(rows[i]) as Record<string, unknown> };
    start = end;
  }
}
