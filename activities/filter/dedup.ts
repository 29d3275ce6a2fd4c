/**
 * Deduplication, within a run and against the SFT datasets of earlier runs (loaded into the same indexes first):
 *
 * - exact: a 64-bit hash of the lower-cased, whitespace-collapsed prompt and answer;
 * - near: MinHash + LSH over word shingles finds candidates; a candidate whose signature estimate is close enough
 *   is confirmed by the exact Jaccard similarity of the two shingle sets (≥ threshold). The candidate's text is read
 *   back from its file by offset, so memory holds fixed-size signatures, not texts, however long the answers.
 *
 * Only kept samples enter the indexes, so a sample is always compared with what the dataset actually holds.
 */
import { stripThinkTags } from '../text/think';
import type { FilterOptions } from '../../schemas/filter-options';
import { readJsonlLocated, RowReader } from './jsonl';
import { HashSet64, jaccardSorted, LshIndex, lshParams, MinHasher, sortedSet } from './minhash';
import { exactHash, Tokenizer } from './text';
import type { Verdict } from './types';

export interface DedupOptions {
  exact: boolean;
  near: FilterOptions['nearDedup'];
}

export interface DedupStats {
  exact: boolean;
  near: boolean;
  threshold: number;
  numPerm: number;
  bands: number;
  rows: number;
  shingleSize: number;
  scope: string;
  earlierDatasets: { path: string; rows: number }[];
  /** Candidates whose signature was compared, and those confirmed by exact Jaccard (read back from disk). */
  candidates: number;
  confirmations: number;
  indexBytes: number;
}

/** Where a kept document's text can be found again. */
export interface DocLocation {
  /** A source registered with `addSource`. */
  source: number;
  offset: number;
  length: number;
}

/** Turns a row of a source file back into (prompt, answer) as they were deduplicated; null if it has none. */
export type RowText = (row: Record<string, unknown>) => { prompt: string; answer: string } | null;

/** Candidates whose signature estimate falls this far below the threshold are not read back (≈4 standard errors). */
const ESTIMATE_MARGIN = 0.15;
/** Candidates confirmed per sample, best estimate first (a true near duplicate is nearly always the first). */
const MAX_CONFIRMATIONS = 8;

export class Deduper {
  private readonly exactSet = new HashSet64();
  private readonly earlierExact = new HashSet64();
  private readonly tokenizer = new Tokenizer();
  private readonly hasher: MinHasher | undefined;
  private readonly lsh: LshIndex | undefined;
  private readonly sources: { file: string; text: RowText }[] = [];
  private readonly reader = new RowReader();
  /** Per kept document: where its row is (the row holds its id; no per-document strings stay in memory). */
  private locSource = new Int32Array(1024);
  private locOffset = new Float64Array(1024);
  private locLength = new Int32Array(1024);
  /** Id and text of documents added without a location (direct callers, tests). */
  private readonly memory = new Map<number, { id: string; text: string }>();
  private earlierDocs = 0;
  private readonly earlier: { path: string; rows: number }[] = [];
  private confirmations = 0;
  readonly bands: number;
  readonly rows: number;

  constructor(private readonly opts: DedupOptions) {
    const near = opts.near;
    const p = lshParams(near.threshold, near.numPerm);
    this.bands = p.bands;
    this.rows = p.rows;
    if (near.enabled) {
      this.hasher = new MinHasher({ numPerm: near.numPerm, shingleSize: near.shingleSize });
      this.lsh = new LshIndex({ bands: p.bands, rows: p.rows, numPerm: near.numPerm }, near.maxCandidates);
    }
  }

  /** Registers a file whose rows can be read back by offset; returns its source number for `check`. */
  addSource(file: string, text: RowText): number {
    this.sources.push({ file, text });
    return this.sources.length - 1;
  }

  private nearText(prompt: string, answer: string): string {
    switch (this.opts.near.scope) {
      case 'prompt':
        return prompt;
      case 'response':
        return answer;
      default:
        return `${prompt}\n${answer}`;
    }
  }

  private readonly key = new Int32Array(2);

  /** 64-bit key of the lower-cased, whitespace-collapsed prompt and answer. */
  private exactKey(prompt: string, answer: string): [number, number] {
    exactHash(prompt, answer, this.key);
    return [this.key[0]!, this.key[1]!];
  }

  /** The id and near-dedup text of kept document `doc`, read back from where it was. */
  private docOf(doc: number): { id: string; text: string | null } {
    const mem = this.memory.get(doc);
    if (mem !== undefined) return mem;
    const src = this.sources[this.locSource[doc]!]!;
    const offset = this.locOffset[doc]!;
    const row = this.reader.read<Record<string, unknown>>(src.file, offset, this.locLength[doc]!);
    const pa = src.text(row);
    const id = doc < this.earlierDocs ? `${src.file}, row at byte ${offset}` : String(row.id);
    return { id, text: pa ? this.nearText(pa.prompt, pa.answer) : null };
  }

  /** Exact Jaccard similarity of the shingle sets of the current query (sorted set given) and `text`. */
  private exactSimilarity(query: Int32Array, text: string | null): number {
    if (text === null) return 0;
    const t = this.tokenizer.run(text);
    return jaccardSorted(query, this.hasher!.shingleSetOf(t.hashes, t.length));
  }

  private remember(doc: number, loc: DocLocation | undefined, text: string, id: string): void {
    if (doc >= this.locSource.length) {
      const grow = <A extends Int32Array | Float64Array>(a: A): A => {
        const b = new (a.constructor as new (n: number) => A)(a.length * 2);
        b.set(a);
        return b;
      };
      this.locSource = grow(this.locSource);
      this.locOffset = grow(this.locOffset);
      this.locLength = grow(this.locLength);
    }
    if (loc) {
      this.locSource[doc] = loc.source;
      this.locOffset[doc] = loc.offset;
      this.locLength[doc] = loc.length;
    } else {
      this.memory.set(doc, { id, text });
    }
  }

  /**
   * Checks one sample and, when it is kept, adds it to the indexes. `id` names it in later reports; `answer` is the
   * formatted text (exact key), `nearAnswer` what near-dedup compares (default: the same; the activity passes the
   * reasoning and summary without the template's tags); `loc` is where the row can be read back (without it the
   * text is kept in memory). Returns the drop verdict, or null (kept).
   */
  check(id: string, prompt: string, answer: string, nearAnswer = answer, loc?: DocLocation): Verdict {
    if (this.opts.exact) {
      const [hi, lo] = this.exactKey(prompt, answer);
      if (this.earlier.length && this.earlierExact.has(hi, lo)) {
        return { reason: 'duplicate_earlier_run', detail: 'same prompt and response as a sample of an earlier run' };
      }
      // Inserted even when the near check below drops the sample: it is then near-identical to a kept one anyway.
      if (!this.exactSet.add(hi, lo)) {
        return {
          reason: 'duplicate',
          detail: 'same prompt and response as an earlier sample (after lower-casing and collapsing whitespace)',
        };
      }
    }
    if (!this.lsh || !this.hasher) return null;
    const text = this.nearText(prompt, nearAnswer);
    const t = this.tokenizer.run(text);
    if (this.hasher.compute(t.hashes, t.length) === 0) return null;
    const threshold = this.opts.near.threshold;
    const n = this.lsh.query(this.hasher.signature, threshold - ESTIMATE_MARGIN);
    let hit = -1;
    let similarity = 0;
    let hitId = '';
    if (n > 0) {
      // Confirm the most similar candidates first, and only a few: on templated data many documents come close.
      const query = sortedSet(this.hasher.shingles, this.hasher.shingleCount);
      const found = this.lsh.found;
      for (let i = 0; i < Math.min(n, MAX_CONFIRMATIONS); i++) {
        this.confirmations++;
        const other = this.docOf(found.docs[i]!);
        similarity = this.exactSimilarity(query, other.text);
        if (similarity >= threshold) {
          hit = found.docs[i]!;
          hitId = other.id;
          break;
        }
      }
    }
    if (hit >= 0) {
      return {
        reason: hit < this.earlierDocs ? 'near_duplicate_earlier_run' : 'near_duplicate',
        detail: `Jaccard ${similarity.toFixed(3)} ≥ ${threshold} with ${hitId} (${this.opts.near.shingleSize}-word shingles)`,
      };
    }
    const doc = this.lsh.insert(this.hasher.signature, true);
    this.remember(doc, loc, text, id);
    return null;
  }

  /**
   * Loads an earlier run's SFT dataset into the indexes (before this run's samples). Rows may be OpenAI messages,
   * ShareGPT conversations, or rows with prompt and content. A sample found in one is reported as
   * `duplicate_earlier_run` / `near_duplicate_earlier_run`.
   */
  async addEarlier(file: string, onProgress?: (rows: number) => void): Promise<number> {
    const source = this.addSource(file, (row) => {
      const pa = promptAndAnswer(row);
      return pa && { prompt: pa.prompt, answer: stripThinkTags(pa.answer) };
    });
    let rows = 0;
    for await (const { row, offset, length } of readJsonlLocated<Record<string, unknown>>(file)) {
      const pa = promptAndAnswer(row);
      if (!pa) continue;
      rows += 1;
      if (rows % 1000 === 0) onProgress?.(rows);
      if (this.opts.exact) {
        const [hi, lo] = this.exactKey(pa.prompt, pa.answer);
        this.earlierExact.add(hi, lo);
      }
      if (this.lsh && this.hasher) {
        const text = this.nearText(pa.prompt, stripThinkTags(pa.answer));
        const t = this.tokenizer.run(text);
        if (this.hasher.compute(t.hashes, t.length) > 0) {
          const doc = this.lsh.insert(this.hasher.signature);
          this.remember(doc, { source, offset, length }, text, `${file}:${rows}`);
        }
      }
    }
    this.earlierDocs = this.lsh?.count ?? 0;
    this.earlier.push({ path: file, rows });
    return rows;
  }

  close(): void {
    this.reader.close();
  }

  stats(): DedupStats {
    return {
      exact: this.opts.exact,
      near: this.opts.near.enabled,
      threshold: this.opts.near.threshold,
      numPerm: this.opts.near.numPerm,
      bands: this.bands,
      rows: this.rows,
      shingleSize: this.opts.near.shingleSize,
      scope: this.opts.near.scope,
      earlierDatasets: this.earlier,
      candidates: this.lsh?.candidates ?? 0,
      confirmations: this.confirmations,
      indexBytes:
        this.exactSet.bytes() +
        this.earlierExact.bytes() +
        (this.lsh?.bytes() ?? 0) +
        this.locSource.byteLength +
        this.locOffset.byteLength +
        this.locLength.byteLength,
    };
  }
}

/** Prompt and answer of an SFT row in any of the formats this project writes or reads. */
export function promptAndAnswer(row: Record<string, unknown>): { prompt: string; answer: string } | null {
  const msgs = (row.messages ?? row.conversations) as
    { role?: string; from?: string; content?: string; value?: string }[] | undefined;
  if (Array.isArray(msgs)) {
    const text = (m: (typeof msgs)[number]) => String(m.content ?? m.value ?? '');
    const user = msgs.filter((m) => m.role === 'user' || m.from === 'human' || m.from === 'user');
    const asst = msgs.filter((m) => m.role === 'assistant' || m.from === 'gpt' || m.from === 'assistant');
    if (!user.length || !asst.length) return null;
    return { prompt: text(user[user.length - 1]!), answer: text(asst[asst.length - 1]!) };
  }
  if (
    typeof row.prompt === 'string' &&
    (typeof row.content === 'string' || typeof row.response === 'string' || typeof row.completion === 'string')
  ) {
    return { prompt: row.prompt, answer: String(row.content ?? row.response ?? row.completion) };
  }
  return null;
}
