/** Expression parser: tokens → MathNode (implicit multiplication, \frac43, mixed numbers, ±, functions). */
import { decimalToRat } from './rationals';
import { FUNCS, INVERSE, NotMath, type Tok } from './tokenise';
import type { MathNode, Rat } from './types';

export const isOp = (t: Tok | undefined, v: string): boolean => !!t && t.k === 'op' && t.v === v;

function numNode(t: Tok): MathNode {
  const r = t.r ?? decimalToRat(t.v);
  if (!r) throw new NotMath(`bad number ${t.v}`);
  return { t: 'num', v: t.v, r, dec: /[.eE]/.test(t.v) };
}

const isIntLit = (n: MathNode): boolean => n.t === 'num' && !n.dec && n.r.d === 1n;

export class ExprParser {
  private pos: number;
  private absDepth = 0;

  constructor(
    private readonly toks: Tok[],
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
  }

  private peek(): Tok | undefined {
    return this.pos < this.end ? this.toks[this.pos] : undefined;
  }

  private expectOp(v: string): void {
    if (!isOp(this.peek(), v)) throw new NotMath(`expected ${v}`);
    this.pos++;
  }

  parseFull(): MathNode {
    const n = this.parseAdd();
    if (this.pos !== this.end) throw new NotMath(`unexpected ${this.toks[this.pos].v}`);
    return n;
  }

  private parseAdd(): MathNode {
    let left = this.parseMul();
    for (;;) {
      const t = this.peek();
      if (t && t.k === 'op' && (t.v === '+' || t.v === '-' || t.v === '±' || t.v === '∓')) {
        this.pos++;
        left = { t: 'bin', op: t.v, a: left, b: this.parseMul() };
      } else return left;
    }
  }

  private startsAtom(t: Tok | undefined): boolean {
    if (!t) return false;
    switch (t.k) {
      case 'num':
      case 'id':
      case 'fn':
        return true;
      case 'cmd':
        return t.v !== 'rfloor' && t.v !== 'rceil' && t.v !== 'emptyset';
      case 'op':
        return t.v === '(' || t.v === '{' || (t.v === '|' && this.absDepth === 0);
      default:
        return false;
    }
  }

  private parseMul(): MathNode {
    let left = this.parseUnary();
    for (;;) {
      const t = this.peek();
      if (isOp(t, '*')) {
        this.pos++;
        left = { t: 'bin', op: '*', a: left, b: this.parseUnary() };
      } else if (isOp(t, '/')) {
        this.pos++;
        left = { t: 'bin', op: '/', a: left, b: this.parseUnary() };
      } else if (this.startsAtom(t)) {
        // "45 000" or "1 2 3": digits side by side are a separator or a list, never a product (the cheap reading
        // 45·000 = 0 would accept a wrong answer)
        if (t!.k === 'num' && this.toks[this.pos - 1]?.k === 'num') throw new NotMath('numbers side by side');
        const right = this.parsePow();
        // mixed number: 2\frac{1}{2} = 2 + 1/2 (only integer whole part and a proper integer fraction)
        const whole = left.t === 'neg' ? left.a : left;
        if (
          isIntLit(whole) &&
          right.t === 'bin' &&
          right.frac &&
          isIntLit(right.a) &&
          isIntLit(right.b) &&
          (right.a as { r: Rat }).r.n < (right.b as { r: Rat }).r.n
        ) {
          const sum: MathNode = { t: 'bin', op: '+', a: whole, b: right };
          left = left.t === 'neg' ? { t: 'neg', a: sum } : sum;
        } else left = { t: 'bin', op: '*', a: left, b: right };
      } else return left;
    }
  }

  private parseUnary(): MathNode {
    const t = this.peek();
    if (isOp(t, '-')) {
      this.pos++;
      return { t: 'neg', a: this.parseUnary() };
    }
    if (isOp(t, '+')) {
      this.pos++;
      return this.parseUnary();
    }
    if (isOp(t, '±') || isOp(t, '∓')) {
      this.pos++;
      return { t: 'pmu', a: this.parseUnary() };
    }
    return this.parsePow();
  }

  private parsePow(): MathNode {
    const base = this.parsePostfix();
    if (isOp(this.peek(), '^')) {
      this.pos++;
      const exp = this.parseScriptArg();
      let n: MathNode = { t: 'bin', op: '^', a: base, b: exp };
      while (isOp(this.peek(), '!')) {
        this.pos++;
        n = { t: 'fn', name: 'factorial', args: [n] };
      }
      return n;
    }
    return base;
  }

  private parsePostfix(): MathNode {
    let a = this.parseAtom();
    while (isOp(this.peek(), '!')) {
      this.pos++;
      a = { t: 'fn', name: 'factorial', args: [a] };
    }
    return a;
  }

  /** Argument of ^, \frac, \sqrt, \binom: a braced group, one digit of a digit run (\frac43), or one atom. */
  private parseScriptArg(): MathNode {
    const t = this.peek();
    if (!t) throw new NotMath('missing argument');
    if (isOp(t, '{')) {
      this.pos++;
      const e = this.parseAdd();
      this.expectOp('}');
      return e;
    }
    if (isOp(t, '-')) {
      this.pos++;
      return { t: 'neg', a: this.parseScriptArg() };
    }
    if (t.k === 'num' && !t.r && /^\d{2,}$/.test(t.v)) {
      const first = t.v[0];
      this.toks[this.pos] = { k: 'num', v: t.v.slice(1) };
      return numNode({ k: 'num', v: first });
    }
    return this.parseAtom();
  }

  /** Argument of \sin, \log…: a parenthesised group, or an implicit product of atoms that are not functions. */
  private parseFnArg(): MathNode {
    const t = this.peek();
    if (isOp(t, '(')) return this.parsePostfix();
    let left = this.parsePow();
    while (this.startsAtom(this.peek()) && this.peek()!.k !== 'fn')
      left = { t: 'bin', op: '*', a: left, b: this.parsePow() };
    return left;
  }

  private parseAtom(): MathNode {
    const t = this.peek();
    if (!t) throw new NotMath('unexpected end');
    this.pos++;
    switch (t.k) {
      case 'num':
        return numNode(t);
      case 'id': {
        let name = t.v;
        if (isOp(this.peek(), '_')) {
          this.pos++;
          const s = this.peek();
          if (!s) throw new NotMath('bad subscript');
          if (isOp(s, '{')) {
            let depth = 0;
            let j = this.pos;
            const parts: string[] = [];
            for (; j < this.end; j++) {
              const u = this.toks[j];
              if (isOp(u, '{')) depth++;
              else if (isOp(u, '}')) {
                depth--;
                if (depth === 0) break;
              } else parts.push(u.v);
            }
            if (j >= this.end) throw new NotMath('bad subscript');
            name += '_' + parts.join('');
            this.pos = j + 1;
          } else {
            name += '_' + (s.k === 'num' ? s.v[0] : s.v);
            if (s.k === 'num' && s.v.length > 1 && !s.r) this.toks[this.pos] = { k: 'num', v: s.v.slice(1) };
            else this.pos++;
          }
          return { t: 'var', name };
        }
        if (name === 'e') return { t: 'const', name: 'e' };
        if (name === 'i') return { t: 'const', name: 'i' };
        return { t: 'var', name };
      }
      case 'op': {
        if (t.v === '(' || t.v === '[' || t.v === '{') {
          const e = this.parseAdd();
          this.expectOp(t.v === '(' ? ')' : t.v === '[' ? ']' : '}');
          return e;
        }
        if (t.v === '|') {
          this.absDepth++;
          const e = this.parseAdd();
          this.absDepth--;
          this.expectOp('|');
          return { t: 'fn', name: 'abs', args: [e] };
        }
        throw new NotMath(`unexpected ${t.v}`);
      }
      case 'cmd':
        switch (t.v) {
          case 'frac': {
            const a = this.parseScriptArg();
            const b = this.parseScriptArg();
            return { t: 'bin', op: '/', a, b, frac: true };
          }
          case 'binom': {
            const a = this.parseScriptArg();
            const b = this.parseScriptArg();
            return { t: 'fn', name: 'combinations', args: [a, b] };
          }
          case 'sqrt': {
            if (isOp(this.peek(), '[')) {
              this.pos++;
              const idx = this.parseAdd();
              this.expectOp(']');
              return { t: 'fn', name: 'nthRoot', args: [this.parseScriptArg(), idx] };
            }
            return { t: 'fn', name: 'sqrt', args: [this.parseScriptArg()] };
          }
          case 'pi':
            return { t: 'const', name: 'pi' };
          case 'infty':
            return { t: 'const', name: 'inf' };
          case 'lfloor':
          case 'lceil': {
            const e = this.parseAdd();
            const close = this.peek();
            if (!close || close.k !== 'cmd' || close.v !== (t.v === 'lfloor' ? 'rfloor' : 'rceil'))
              throw new NotMath('unclosed floor/ceil');
            this.pos++;
            return { t: 'fn', name: t.v === 'lfloor' ? 'floor' : 'ceil', args: [e] };
          }
          default:
            throw new NotMath(`unexpected \\${t.v}`);
        }
      case 'fn': {
        let fname = FUNCS[t.v];
        let power: MathNode | null = null;
        let base: MathNode | null = null;
        for (let k = 0; k < 2; k++) {
          if (isOp(this.peek(), '^')) {
            this.pos++;
            power = this.parseScriptArg();
          } else if (isOp(this.peek(), '_') && t.v === 'log') {
            this.pos++;
            base = this.parseScriptArg();
          }
        }
        if (power && power.t === 'neg' && power.a.t === 'num' && power.a.v === '1' && INVERSE[t.v]) {
          fname = INVERSE[t.v];
          power = null;
        }
        const arg = this.parseFnArg();
        let n: MathNode = { t: 'fn', name: fname, args: base ? [arg, base] : [arg] };
        if (power) n = { t: 'bin', op: '^', a: n, b: power };
        return n;
      }
      default:
        throw new NotMath(`unexpected ${t.v}`);
    }
  }
}

export function hasPm(n: MathNode): boolean {
  switch (n.t) {
    case 'pmu':
      return true;
    case 'bin':
      return n.op === '±' || n.op === '∓' || hasPm(n.a) || hasPm(n.b);
    case 'neg':
      return hasPm(n.a);
    case 'fn':
      return n.args.some(hasPm);
    default:
      return false;
  }
}

/** All sign choices of an expression with ± (at most 3 of them). */
export function expandPm(n: MathNode, budget = { left: 3 }): MathNode[] {
  switch (n.t) {
    case 'pmu': {
      if (budget.left-- <= 0) throw new NotMath('too many ±');
      const as = expandPm(n.a, budget);
      return [...as, ...as.map((a): MathNode => ({ t: 'neg', a }))];
    }
    case 'bin': {
      const as = expandPm(n.a, budget);
      const bs = expandPm(n.b, budget);
      const out: MathNode[] = [];
      if (n.op === '±' || n.op === '∓') {
        if (budget.left-- <= 0) throw new NotMath('too many ±');
        const first = n.op === '±' ? '+' : '-';
        const second = n.op === '±' ? '-' : '+';
        for (const a of as) for (const b of bs) out.push({ t: 'bin', op: first, a, b }, { t: 'bin', op: second, a, b });
      } else for (const a of as) for (const b of bs) out.push({ ...n, a, b });
      return out;
    }
    case 'neg':
      return expandPm(n.a, budget).map((a): MathNode => ({ t: 'neg', a }));
    case 'fn': {
      let combos: MathNode[][] = [[]];
      for (const arg of n.args) {
        const opts = expandPm(arg, budget);
        combos = combos.flatMap((c) => opts.map((o) => [...c, o]));
      }
      return combos.map((args): MathNode => ({ t: 'fn', name: n.name, args }));
    }
    default:
      return [n];
  }
}
