/**
 * MinHash signatures and an LSH index over them, in typed arrays (no per-document objects), for near-duplicate
 * detection. The scheme is datasketch's `affine32` (its default since 2.0): each shingle hash is pre-mixed once with
 * murmur3's finaliser, then permuted by `numPerm` affine maps `a·x + b mod 2^32` (a odd: bijections), keeping the
 * minimum of each. The signature is cut into `bands` bands of `rows` values; documents sharing a band are candidates.
 *
 * Bands and rows are chosen for recall (a pair at the threshold becomes a candidate with probability ≥ 0.999), and
 * candidates are then confirmed, so the decision is "exact Jaccard of the shingle sets ≥ threshold", not a coin flip
 * around it. Per kept document the index holds `numPerm` bytes of signature (b-bit minwise hashing: the low 8 bits
 * of each value, enough for a cheap pre-check of candidates) and one chain link per band.
 */
import { fmix32, ngramHash } from './text';

/** Math.imul, bound once: under jest's sandboxed globals a `Math.` lookup in a hot loop is ~50× slower. */
const imul = Math.imul;

/** mulberry32, for the fixed hash-function parameters. */
function prng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = imul(t ^ (t >>> 15), 1 | t);
    r = (r + imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return (r ^ (r >>> 14)) >>> 0;
  };
}

/** Probability that a pair with Jaccard s becomes an LSH candidate. */
export function candidateProbability(s: number, bands: number, rows: number): number {
  return 1 - (1 - s ** rows) ** bands;
}

/**
 * The most rows per band (fewest spurious candidates) for which a pair with Jaccard = threshold still becomes a
 * candidate with probability ≥ `recall`; bands = ⌊numPerm / rows⌋.
 */
export function lshParams(threshold: number, numPerm: number, recall = 0.999): { bands: number; rows: number } {
  for (let rows = numPerm; rows >= 1; rows--) {
    const bands = Math.floor(numPerm / rows);
    if (candidateProbability(threshold, bands, rows) >= recall) return { bands, rows };
  }
  return { bands: numPerm, rows: 1 };
}

export interface MinHashOptions {
  numPerm: number;
  shingleSize: number;
  seed?: number;
}

/** Computes MinHash signatures of token-hash sequences (word shingles). */
export class MinHasher {
  readonly numPerm: number;
  readonly shingleSize: number;
  private readonly a: Int32Array;
  private readonly b: Int32Array;
  readonly signature: Int32Array;
  /** Shingle hashes of the last `compute` (for the exact check of candidates). */
  shingles: Int32Array = new Int32Array(1024);
  shingleCount = 0;
  /** The shingle hashes pre-mixed (murmur3 finaliser), the input of the permutations. */
  private mixed: Int32Array = new Int32Array(1024);

  constructor(opts: MinHashOptions) {
    if (opts.numPerm % 4 !== 0) throw new RangeError(`numPerm must be a multiple of 4, got ${opts.numPerm}`);
    this.numPerm = opts.numPerm;
    this.shingleSize = opts.shingleSize;
    const rnd = prng(opts.seed ?? 0x5eed);
    this.a = new Int32Array(this.numPerm);
    this.b = new Int32Array(this.numPerm);
    for (let i = 0; i < this.numPerm; i++) {
      this.a[i] = rnd() | 1; // odd multiplier: a bijection on 32 bits
      this.b[i] = rnd();
    }
    this.signature = new Int32Array(this.numPerm);
  }

  /**
   * Signature of the shingle set of tokens[0..n) into `this.signature`. Returns the number of shingles (0: nothing
   * to compare). Texts shorter than one shingle count as one shingle of all their tokens.
   */
  compute(tokens: Int32Array, n: number): number {
    const sig = this.signature;
    const a = this.a;
    const b = this.b;
    const k = this.numPerm;
    this.shingleCount = 0;
    if (n === 0) {
      sig.fill(0x7fffffff);
      return 0;
    }
    const w = Math.min(this.shingleSize, n);
    const count = n - w + 1;
    if (this.shingles.length < count) {
      this.shingles = new Int32Array(Math.max(count, this.shingles.length * 2));
      this.mixed = new Int32Array(this.shingles.length);
    }
    const xs = this.mixed;
    for (let s = 0; s < count; s++) {
      const h = ngramHash(tokens, s, w);
      this.shingles[s] = h;
      xs[s] = fmix32(h) | 0;
    }
    // Permutations outside, shingles inside, four at a time: the running minima stay in registers (≈3× faster
    // than updating the signature array per shingle).
    for (let i = 0; i < k; i += 4) {
      const a0 = a[i]!;
      const a1 = a[i + 1]!;
      const a2 = a[i + 2]!;
      const a3 = a[i + 3]!;
      const b0 = b[i]!;
      const b1 = b[i + 1]!;
      const b2 = b[i + 2]!;
      const b3 = b[i + 3]!;
      let m0 = 0x7fffffff;
      let m1 = 0x7fffffff;
      let m2 = 0x7fffffff;
      let m3 = 0x7fffffff;
      for (let s = 0; s < count; s++) {
        const x = xs[s]!;
        let v = (imul(x, a0) + b0) | 0;
        if (v < m0) m0 = v;
        v = (imul(x, a1) + b1) | 0;
        if (v < m1) m1 = v;
        v = (imul(x, a2) + b2) | 0;
        if (v < m2) m2 = v;
        v = (imul(x, a3) + b3) | 0;
        if (v < m3) m3 = v;
      }
      sig[i] = m0;
      sig[i + 1] = m1;
      sig[i + 2] = m2;
      sig[i + 3] = m3;
    }
    this.shingleCount = count;
    return count;
  }

  /** Sorted set of the shingle hashes of tokens[0..n), leaving the signature and `shingles` alone. */
  shingleSetOf(tokens: Int32Array, n: number): Int32Array {
    if (n === 0) return new Int32Array(0);
    const w = Math.min(this.shingleSize, n);
    const out = new Int32Array(n - w + 1);
    for (let s = 0; s < out.length; s++) out[s] = ngramHash(tokens, s, w);
    return sortedSet(out, out.length);
  }
}

/** Sorted, de-duplicated copy of hashes[0..n). */
export function sortedSet(hashes: Int32Array, n: number): Int32Array {
  const s = hashes.slice(0, n).sort();
  let m = 0;
  for (let i = 0; i < s.length; i++) if (i === 0 || s[i] !== s[m - 1]) s[m++] = s[i]!;
  return s.subarray(0, m);
}

/** Jaccard similarity of two sorted sets. */
export function jaccardSorted(x: Int32Array, y: Int32Array): number {
  let i = 0;
  let j = 0;
  let both = 0;
  while (i < x.length && j < y.length) {
    if (x[i] === y[j]) {
      both++;
      i++;
      j++;
    } else if (x[i]! < y[j]!) i++;
    else j++;
  }
  const union = x.length + y.length - both;
  return union ? both / union : 1;
}

/**
 * An LSH index of the signatures of kept documents. Band values are hashed to 32-bit keys; an open-addressing table
 * maps each distinct key to the newest (document, band) entry of its bucket, and entries chain to older ones, so
 * heavily templated data, where thousands of documents share a band, costs a short walk rather than a long probe.
 * A hash collision only adds a candidate, which the caller's check rejects.
 */
export class LshIndex {
  readonly bands: number;
  readonly rows: number;
  readonly numPerm: number;
  /** Distinct band keys → newest entry + 1 (0: empty slot). Entry e is (document ⌊e / bands⌋, band e mod bands). */
  private keys: Int32Array;
  private heads: Int32Array;
  private mask: number;
  private distinct = 0;
  /** Per entry: the next (older) entry of the same bucket + 1. */
  private next: Int32Array;
  /** Low bytes of each kept document's signature, packed 4 to an int, in chunks of 4096 documents. */
  private readonly sigWords: Int32Array[] = [];
  private static readonly CHUNK_SHIFT = 12;
  count = 0;
  private readonly bandKeys: Int32Array;
  /** Per kept document, the query that last looked at it (each candidate is considered once per query). */
  private seenAt: Int32Array = new Int32Array(1 << 12);
  private queryNo = 0;
  /** Low bytes of the query signature, packed. */
  private packed: Int32Array;
  /** Candidates considered by queries so far (the cost of templated data shows here). */
  candidates = 0;

  constructor(
    opts: { bands: number; rows: number; numPerm: number },
    private readonly maxCandidates = 64,
  ) {
    if (opts.numPerm % 4 !== 0) throw new RangeError(`numPerm must be a multiple of 4, got ${opts.numPerm}`);
    if (opts.bands * opts.rows > opts.numPerm)
      throw new RangeError(`bands × rows (${opts.bands}×${opts.rows}) exceeds numPerm ${opts.numPerm}`);
    this.bands = opts.bands;
    this.rows = opts.rows;
    this.numPerm = opts.numPerm;
    this.keys = new Int32Array(1 << 14);
    this.heads = new Int32Array(1 << 14);
    this.mask = this.keys.length - 1;
    this.next = new Int32Array(this.bands << 10);
    this.bandKeys = new Int32Array(this.bands);
    this.packed = new Int32Array(this.numPerm >>> 2);
  }

  private prepare(sig: Int32Array): void {
    for (let b = 0; b < this.bands; b++) {
      let h = imul(b + 1, 0x9e3779b1);
      const base = b * this.rows;
      for (let r = 0; r < this.rows; r++) {
        h = imul(h ^ sig[base + r]!, 0x85ebca6b);
        h ^= h >>> 13;
      }
      const key = fmix32(h) | 0;
      this.bandKeys[b] = key === 0 ? 1 : key;
    }
    const words = this.numPerm >>> 2;
    for (let w = 0; w < words; w++) {
      const i = w << 2;
      this.packed[w] =
        (sig[i]! & 0xff) | ((sig[i + 1]! & 0xff) << 8) | ((sig[i + 2]! & 0xff) << 16) | ((sig[i + 3]! & 0xff) << 24);
    }
  }

  /** Estimated Jaccard similarity between the prepared query and kept document `doc` (b-bit corrected). */
  private estimate(doc: number): number {
    const chunk = this.sigWords[doc >>> LshIndex.CHUNK_SHIFT]!;
    const words = this.numPerm >>> 2;
    const off = (doc & ((1 << LshIndex.CHUNK_SHIFT) - 1)) * words;
    let eq = 0;
    for (let w = 0; w < words; w++) {
      // Count the zero bytes of x = a ^ b exactly: a byte's high bit ends up set iff the byte is zero.
      const x = this.packed[w]! ^ chunk[off + w]!;
      let y = (x & 0x7f7f7f7f) + 0x7f7f7f7f;
      y = ~(y | x | 0x7f7f7f7f);
      eq += ((y >>> 7) & 1) + ((y >>> 15) & 1) + ((y >>> 23) & 1) + ((y >>> 31) & 1);
    }
    const p = eq / this.numPerm;
    return Math.max(0, (p - 1 / 256) / (1 - 1 / 256));
  }

  /** Estimated similarity between `sig` and kept document `doc`. */
  similarity(sig: Int32Array, doc: number): number {
    this.prepare(sig);
    return this.estimate(doc);
  }

  private slotOf(key: number): number {
    let slot = fmix32(key) & this.mask;
    while (this.keys[slot] !== 0 && this.keys[slot] !== key) slot = (slot + 1) & this.mask;
    return slot;
  }

  /** Candidates found by the last `query`: documents and their estimated similarity, best first. */
  readonly found: { docs: Int32Array; estimates: Float64Array; count: number } = {
    docs: new Int32Array(0),
    estimates: new Float64Array(0),
    count: 0,
  };

  /**
   * Candidates of `sig` (documents sharing a band, at most `maxCandidates` per band, newest first) whose estimated
   * similarity is at least `minEstimate`, into `found`, sorted by estimate (best first). Returns their number.
   */
  query(sig: Int32Array, minEstimate: number): number {
    this.prepare(sig);
    const q = ++this.queryNo;
    const f = this.found;
    if (f.docs.length < this.bands * this.maxCandidates) {
      (f as { docs: Int32Array }).docs = new Int32Array(this.bands * this.maxCandidates);
      (f as { estimates: Float64Array }).estimates = new Float64Array(this.bands * this.maxCandidates);
    }
    let n = 0;
    for (let b = 0; b < this.bands; b++) {
      let e = this.heads[this.slotOf(this.bandKeys[b]!)]!; // entry + 1
      let seen = 0;
      while (e !== 0 && seen < this.maxCandidates) {
        const doc = ((e - 1) / this.bands) | 0;
        e = this.next[e - 1]!;
        seen++;
        if (this.seenAt[doc] === q) continue;
        this.seenAt[doc] = q;
        this.candidates++;
        const est = this.estimate(doc);
        if (est < minEstimate) continue;
        // insertion sort: candidates above the bar are few
        let i = n++;
        while (i > 0 && f.estimates[i - 1]! < est) {
          f.estimates[i] = f.estimates[i - 1]!;
          f.docs[i] = f.docs[i - 1]!;
          i--;
        }
        f.estimates[i] = est;
        f.docs[i] = doc;
      }
    }
    f.count = n;
    return n;
  }

  /** Adds a kept document; returns its number (the running count). Reuses the last query's band keys when told. */
  insert(sig: Int32Array, prepared = false): number {
    if (!prepared) this.prepare(sig);
    const doc = this.count++;
    const words = this.numPerm >>> 2;
    const ci = doc >>> LshIndex.CHUNK_SHIFT;
    if (ci === this.sigWords.length) this.sigWords.push(new Int32Array(words << LshIndex.CHUNK_SHIFT));
    this.sigWords[ci]!.set(this.packed, (doc & ((1 << LshIndex.CHUNK_SHIFT) - 1)) * words);
    if (doc >= this.seenAt.length) this.seenAt = growInt32(this.seenAt);
    if ((doc + 1) * this.bands > this.next.length) this.next = growInt32(this.next);
    if ((this.distinct + this.bands) * 4 > this.keys.length * 3) this.rehash();
    for (let b = 0; b < this.bands; b++) {
      const key = this.bandKeys[b]!;
      const slot = this.slotOf(key);
      if (this.keys[slot] === 0) {
        this.keys[slot] = key;
        this.distinct++;
      }
      const e = doc * this.bands + b;
      this.next[e] = this.heads[slot]!;
      this.heads[slot] = e + 1;
    }
    return doc;
  }

  private rehash(): void {
    const oldKeys = this.keys;
    const oldHeads = this.heads;
    this.keys = new Int32Array(oldKeys.length * 2);
    this.heads = new Int32Array(oldKeys.length * 2);
    this.mask = this.keys.length - 1;
    for (let i = 0; i < oldKeys.length; i++) {
      if (oldKeys[i] === 0) continue;
      const slot = this.slotOf(oldKeys[i]!);
      this.keys[slot] = oldKeys[i]!;
      this.heads[slot] = oldHeads[i]!;
    }
  }

  /** Bytes held by the index (table, chains, signatures). */
  bytes(): number {
    return (
      this.keys.byteLength +
      this.heads.byteLength +
      this.next.byteLength +
      this.seenAt.byteLength +
      this.sigWords.reduce((s, c) => s + c.byteLength, 0)
    );
  }
}

function growInt32(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/** An open-addressing set of 64-bit keys given as two 32-bit halves (exact deduplication). */
export class HashSet64 {
  private hi: Int32Array;
  private lo: Int32Array;
  private mask: number;
  size = 0;

  constructor(initialCapacity = 1 << 14) {
    let cap = 1;
    while (cap < initialCapacity) cap <<= 1;
    this.hi = new Int32Array(cap);
    this.lo = new Int32Array(cap);
    this.mask = cap - 1;
  }

  private slot(hi: number, lo: number): number {
    let slot = fmix32(lo ^ imul(hi, 0x9e3779b1)) & this.mask;
    while (this.hi[slot] !== 0 || this.lo[slot] !== 0) {
      if (this.hi[slot] === hi && this.lo[slot] === lo) return slot;
      slot = (slot + 1) & this.mask;
    }
    return slot;
  }

  has(hi: number, lo: number): boolean {
    hi |= 0;
    lo |= 0;
    if (hi === 0 && lo === 0) lo = 1;
    const s = this.slot(hi, lo);
    return this.hi[s] === hi && this.lo[s] === lo;
  }

  /** Adds the key; false when it was already there. (0, 0) is remapped to (0, 1): the empty marker. */
  add(hi: number, lo: number): boolean {
    hi |= 0;
    lo |= 0;
    if (hi === 0 && lo === 0) lo = 1;
    const s = this.slot(hi, lo);
    if (this.hi[s] === hi && this.lo[s] === lo) return false;
    this.hi[s] = hi;
    this.lo[s] = lo;
    this.size++;
    if (this.size * 2 > this.hi.length) this.grow();
    return true;
  }

  private grow(): void {
    const oh = this.hi;
    const ol = this.lo;
    this.hi = new Int32Array(oh.length * 2);
    this.lo = new Int32Array(oh.length * 2);
    this.mask = this.hi.length - 1;
    this.size = 0;
    for (let i = 0; i < oh.length; i++) if (oh[i] !== 0 || ol[i] !== 0) this.add(oh[i]!, ol[i]!);
  }

  bytes(): number {
    return this.hi.byteLength + this.lo.byteLength;
  }
}
