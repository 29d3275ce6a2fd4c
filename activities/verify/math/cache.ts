/** A bounded cache: cleared wholesale when full (cheap, and hot entries such as repeated golds come back at once). */
export class BoundedCache<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override set(k: K, v: V): this {
    if (this.size >= this.max) this.clear();
    return super.set(k, v);
  }
}
