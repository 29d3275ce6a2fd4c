/**
 * The scripts that run assertion-style tests apart from the program under test (see isolated-tests.ts).
 *
 *   host:   runs in the program's sandbox. Loads the program, then answers calls: reads {op: call, name, args} on fd 3,
 *           writes {op: return | raise | unsendable} on fd 4. It shares the process with the program, so it is not
 *           trusted: whatever it sends is only ever data for the runner to decode.
 *   runner: runs in a second sandbox with the tests, never with the program. Gives the tests a stand-in function for
 *           each name of the program they use (the entry point, or the names plain asserts call), which sends the call
 *           out on fd 3 and reads the reply on fd 4. Reports on fd 3: {op: done, nonce, calls} once every test has run
 *           and passed, else {op: fail | fatal | untestable}.
 *
 * Values cross as JSON with tags, decoded by the runner into fresh built-in values only (Python: None, bool, int,
 * float, complex, str, bytes, list, tuple, dict, set, frozenset; JavaScript: undefined, null, booleans, numbers,
 * bigints, strings, arrays, plain objects, Map, Set), so a returned object cannot bring its own __eq__ or toJSON
 * into the tests. Anything the runner does not expect from the program ends the run as failed (exit 3), whatever the
 * tests would have caught.
 */

const PY_CODEC = String.raw`
import sys
if hasattr(sys, 'set_int_max_str_digits'):
    sys.set_int_max_str_digits(0)

class Unsendable(Exception):
    pass

def enc(x, depth=0):
    if depth > 200:
        raise Unsendable('a value nested deeper than 200')
    if x is None or x is True or x is False:
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    if isinstance(x, str):
        return str.__str__(x)
    if isinstance(x, (bytes, bytearray)):
        return {'bytes': bytes(x).hex()}
    if isinstance(x, complex):
        return {'complex': [complex(x).real, complex(x).imag]}
    if isinstance(x, tuple):
        return {'tuple': [enc(v, depth + 1) for v in tuple.__iter__(x)]}
    if isinstance(x, list):
        return [enc(v, depth + 1) for v in list.__iter__(x)]
    if isinstance(x, dict):
        return {'dict': [[enc(k, depth + 1), enc(v, depth + 1)] for k, v in dict.items(x)]}
    if isinstance(x, frozenset):
        return {'frozenset': [enc(v, depth + 1) for v in frozenset.__iter__(x)]}
    if isinstance(x, set):
        return {'set': [enc(v, depth + 1) for v in set.__iter__(x)]}
    raise Unsendable(type(x).__name__)

def dec(v):
    t = type(v)
    if v is None or t is bool or t is int or t is float or t is str:
        return v
    if t is list:
        return [dec(x) for x in v]
    if t is dict and len(v) == 1:
        (tag, body), = v.items()
        if tag == 'tuple' and type(body) is list:
            return tuple(dec(x) for x in body)
        if tag == 'dict' and type(body) is list:
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError('bad dict entry')
                out[dec(pair[0])] = dec(pair[1])
            return out
        if tag == 'set' and type(body) is list:
            return set(dec(x) for x in body)
        if tag == 'frozenset' and type(body) is list:
            return frozenset(dec(x) for x in body)
        if tag == 'bytes' and type(body) is str:
            return bytes.fromhex(body)
        if tag == 'complex' and type(body) is list and len(body) == 2 and all(type(x) in (int, float) for x in body):
            return complex(body[0], body[1])
    raise ValueError('not a value: ' + repr(v)[:80])
`;

const PY_CHANNEL = String.raw`
import json, os

def send(obj, fd):
    data = (json.dumps(obj) + '\n').encode()
    while data:
        data = data[os.write(fd, data):]

class Channel:
    def __init__(self, fd):
        self.fd, self.buf = fd, b''
    def recv(self):
        if b'\n' not in self.buf:
            parts = [self.buf]
            while True:
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    return None
                parts.append(chunk)
                if b'\n' in chunk:
                    break
            self.buf = b''.join(parts)
        line, _, self.buf = self.buf.partition(b'\n')
        return json.loads(line)
`;

/** Python, in the program's sandbox: load /sandbox/main.py, then serve calls. */
export const PY_HOST =
  PY_CODEC +
  PY_CHANNEL +
  String.raw`
import builtins, traceback, types

def text(e):
    try:
        return str(e)[:500]
    except BaseException:
        return ''

def describe(e):
    return type(e).__name__ + ': ' + text(e)

def flush():
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except BaseException:
            pass

def main():
    calls = Channel(3)
    # a module of its own, not __main__: a main block does not run (as in HumanEval's harness), dataclasses and
    # pickle find their module
    module = types.ModuleType('solution')
    module.__file__ = '/sandbox/main.py'
    sys.modules['solution'] = module
    ns = module.__dict__
    sys.argv[:] = ['/sandbox/main.py']
    try:
        with open('/sandbox/main.py', encoding='utf-8') as f:
            code = compile(f.read(), '/sandbox/main.py', 'exec')
        exec(code, ns)
    except BaseException as e:
        traceback.print_exc()
        flush()
        send({'op': 'loaderror', 'error': describe(e), 'exception': isinstance(e, Exception)}, 4)
        os._exit(1)
    names = sorted(k for k, v in list(ns.items()) if type(k) is str and k.isidentifier() and not k.startswith('__') and callable(v))
    send({'op': 'ready', 'names': names}, 4)
    while True:
        msg = calls.recv()
        if msg is None:
            flush()
            os._exit(0)
        try:
            fn = ns.get(msg['name'])
            if not callable(fn):
                raise NameError('name %r is not defined by the program' % msg['name'])
            args = [dec(a) for a in msg['args']]
            kwargs = {k: dec(v) for k, v in msg['kwargs']}
            result = fn(*args, **kwargs)
        except BaseException as e:
            flush()
            send({'op': 'raise', 'type': type(e).__name__, 'message': text(e), 'exception': isinstance(e, Exception)}, 4)
            continue
        try:
            value = enc(result)
        except (Unsendable, RecursionError) as e:
            send({'op': 'unsendable', 'type': str(e)}, 4)
            continue
        flush()
        send({'op': 'return', 'value': value}, 4)

main()
`;

/** Python, in the tests' sandbox: /sandbox/runner.py NONCE ENTRY_POINT, tests in /sandbox/test.py. */
export const PY_RUNNER =
  PY_CODEC +
  PY_CHANNEL +
  String.raw`
import ast, builtins, keyword, re, traceback, types

NONCE, ENTRY = sys.argv[1], sys.argv[2]
replies = Channel(4)
calls = 0

def end(msg, status):
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except BaseException:
            pass
    send(msg, 3)
    os._exit(status)

def fatal(kind, why):
    end({'op': 'fatal', 'kind': kind, 'why': why}, 3)

def untestable(why):
    end({'op': 'untestable', 'why': why}, 4)

def reply():
    try:
        msg = replies.recv()
    except BaseException as e:
        fatal('protocol', 'the program sent something that is not a reply: %s' % str(e)[:200])
    if msg is None:
        fatal('ended', 'the program ended before the tests finished')
    if type(msg) is not dict:
        fatal('protocol', 'the program sent something that is not a reply')
    return msg

class ProgramError(Exception):
    """An exception of the program's own type, raised in the tests by name and message."""

def stand_in(name):
    def call(*args, **kwargs):
        global calls
        try:
            msg = {'op': 'call', 'name': name, 'args': [enc(a) for a in args], 'kwargs': [[k, enc(v)] for k, v in kwargs.items()]}
        except (Unsendable, RecursionError) as e:
            untestable('the tests pass a %s to %s: only plain data crosses to the program' % (e, name))
        calls += 1
        send(msg, 3)
        r = reply()
        op = r.get('op')
        if op == 'return':
            try:
                return dec(r.get('value'))
            except BaseException as e:
                fatal('protocol', 'unreadable value from %s: %s' % (name, str(e)[:200]))
        if op == 'raise':
            kind, text = r.get('type'), str(r.get('message'))[:500]
            if r.get('exception') is not True:
                fatal('ended', '%s raised %s, which ends a program, not an error the tests could expect' % (name, kind))
            cls = getattr(builtins, kind, None) if type(kind) is str else None
            # StopIteration would end a loop of the tests (map, a for over an iterator) as if it had finished
            if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, (StopIteration, StopAsyncIteration)):
                raise cls(text)
            raise ProgramError(text)
        if op == 'unsendable':
            fatal('unsendable', '%s returned a %s: only plain data (None, bool, int, float, complex, str, bytes, list, tuple, dict, set) is compared' % (name, str(r.get('type'))[:80]))
        fatal('protocol', 'the program sent %r instead of a reply' % str(op)[:40])
    call.__name__ = call.__qualname__ = name
    return call

def is_stub(fn):
    return all(isinstance(st, ast.Pass) or (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant) and (isinstance(st.value.value, str) or st.value.value is Ellipsis)) for st in fn.body)

def prompt_names(source):
    """(names the prompt defines, the functions among them that are only a signature and a docstring)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(), set()
    out, stubs = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_stub(node):
            stubs.add(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split('.')[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                out |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return out - stubs, stubs

def names_used(code):
    out = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= names_used(c)
    return out

def where(e):
    for fr in reversed(traceback.extract_tb(e.__traceback__)):
        if fr.filename == '/sandbox/test.py':
            return ' (test line %d: %s)' % (fr.lineno, (fr.line or '').strip()[:200])
    return ''

def main():
    ready = reply()
    if ready.get('op') == 'loaderror':
        error = str(ready.get('error'))[:500]
        if ready.get('exception') is not True:
            fatal('ended', 'the program ended while loading: %s' % error)
        fatal('load', 'the program raised while loading: %s' % error)
    if ready.get('op') != 'ready' or type(ready.get('names')) is not list:
        fatal('protocol', 'the program did not start as expected')
    offered = set(n for n in ready['names'] if type(n) is str and n.isidentifier() and not keyword.iskeyword(n))
    ns = {'__name__': '__main__', '__builtins__': builtins}
    trusted, stubs = set(), set()
    if os.path.exists('/sandbox/prompt.py'):
        with open('/sandbox/prompt.py', encoding='utf-8') as f:
            prompt = f.read()
        # the prompt's helpers are the task's, never the program's, even where the prompt does not run here; its
        # stubs (a signature and a docstring) are what the program implements
        trusted, stubs = prompt_names(prompt)
        try:
            exec(compile(prompt, '/sandbox/prompt.py', 'exec'), ns)
        except Exception:
            ns = {'__name__': '__main__', '__builtins__': builtins}
    with open('/sandbox/test.py', encoding='utf-8') as f:
        source = f.read()
    try:
        code = compile(source, '/sandbox/test.py', 'exec')
    except SyntaxError as e:
        untestable('the tests do not compile: %s' % e)
    # only stubs and names that would otherwise be undefined: the program cannot shadow a builtin or a helper of the
    # prompt
    for n in offered & names_used(code):
        if n in stubs or (n not in ns and n not in trusted and not hasattr(builtins, n)):
            ns[n] = stand_in(n)
    entry = stand_in(ENTRY) if ENTRY else None
    if entry:
        ns[ENTRY] = entry
    try:
        exec(code, ns)
        if entry and re.search(r'\bcheck\b', source):
            check = ns.get('check')
            if not callable(check):
                untestable('the tests define no check function')
            check(entry)
    except BaseException as e:
        traceback.print_exc()
        end({'op': 'fail', 'error': ' '.join((type(e).__name__ + ': ' + str(e)).split())[:300] + where(e)}, 1)
    if calls == 0:
        untestable('the tests never call the program')
    end({'op': 'done', 'nonce': NONCE, 'calls': calls}, 0)

main()
`;

const JS_CODEC = String.raw`
class Unsendable extends Error {}
function enc(x, depth = 0) {
  if (depth > 200) throw new Unsendable('a value nested deeper than 200');
  switch (typeof x) {
    case 'undefined': return { undefined: 1 };
    case 'boolean': case 'string': return x;
    case 'number': return Number.isFinite(x) && !Object.is(x, -0) ? x : { number: Object.is(x, -0) ? '-0' : String(x) };
    case 'bigint': return { bigint: x.toString() };
    case 'object': {
      if (x === null) return null;
      if (Array.isArray(x)) { const out = []; for (let i = 0; i < x.length; i++) out.push(enc(x[i], depth + 1)); return out; }
      if (x instanceof Map) return { map: [...x].map(([k, v]) => [enc(k, depth + 1), enc(v, depth + 1)]) };
      if (x instanceof Set) return { set: [...x].map((v) => enc(v, depth + 1)) };
      const proto = Object.getPrototypeOf(x);
      if (proto === Object.prototype || proto === null) return { object: Object.keys(x).map((k) => [k, enc(x[k], depth + 1)]) };
      throw new Unsendable((x.constructor && x.constructor.name) || 'object');
    }
    default: throw new Unsendable(typeof x);
  }
}
const NUMBERS = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 };
function dec(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map(dec);
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const tag = keys[0], body = v[tag];
      if (tag === 'undefined') return undefined;
      if (tag === 'number' && Object.prototype.hasOwnProperty.call(NUMBERS, body)) return NUMBERS[body];
      if (tag === 'bigint' && typeof body === 'string' && /^-?\d+$/.test(body)) return BigInt(body);
      if (tag === 'map' && Array.isArray(body)) return new Map(body.map((p) => { if (!Array.isArray(p) || p.length !== 2) throw new Error('bad map entry'); return [dec(p[0]), dec(p[1])]; }));
      if (tag === 'set' && Array.isArray(body)) return new Set(body.map(dec));
      if (tag === 'object' && Array.isArray(body)) {
        const out = {};
        for (const p of body) {
          if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string') throw new Error('bad object entry');
          Object.defineProperty(out, p[0], { value: dec(p[1]), writable: true, enumerable: true, configurable: true });
        }
        return out;
      }
    }
  }
  throw new Error('not a value: ' + JSON.stringify(v).slice(0, 80));
}
`;

const JS_CHANNEL = String.raw`
const fs = require('fs');
const pause = new Int32Array(new SharedArrayBuffer(4));
function send(obj, fd) {
  const data = Buffer.from(JSON.stringify(obj) + '\n');
  for (let off = 0; off < data.length; ) {
    try { off += fs.writeSync(fd, data, off); } catch (e) { if (e.code !== 'EAGAIN') throw e; Atomics.wait(pause, 0, 0, 2); }
  }
}
class Channel {
  constructor(fd) { this.fd = fd; this.buf = Buffer.alloc(0); }
  recv() {
    if (this.buf.indexOf(10) < 0) {
      const parts = [this.buf];
      for (;;) {
        const chunk = Buffer.alloc(1 << 16);
        let n;
        try { n = fs.readSync(this.fd, chunk, 0, chunk.length, null); } catch (e) { if (e.code === 'EAGAIN') { Atomics.wait(pause, 0, 0, 2); continue; } if (e.code === 'EOF') return null; throw e; }
        if (n === 0) return null;
        parts.push(chunk.subarray(0, n));
        if (chunk.subarray(0, n).indexOf(10) >= 0) break;
      }
      this.buf = Buffer.concat(parts);
    }
    const nl = this.buf.indexOf(10);
    const line = this.buf.subarray(0, nl).toString();
    this.buf = this.buf.subarray(nl + 1);
    return JSON.parse(line);
  }
}
`;

/** JavaScript, in the program's sandbox: load /sandbox/main.js as a CommonJS module, then serve calls. */
export const JS_HOST =
  `'use strict';\n` +
  JS_CODEC +
  JS_CHANNEL +
  String.raw`
const Module = require('module');
const vm = require('vm');
const exit = process.reallyExit.bind(process);
const IDENT = /^[A-Za-z_$][\w$]*$/;
const describe = (e) => { try { return e instanceof Error ? (e.name + ': ' + e.message).slice(0, 500) : 'a thrown ' + typeof e; } catch { return 'an unprintable error'; } };
const text = (e) => { try { return String(e.message).slice(0, 500); } catch { return ''; } };

const filename = '/sandbox/main.js';
const source = fs.readFileSync(filename, 'utf8').replace(/^#!.*/, '');
const mod = new Module(filename, null);
mod.filename = filename;
mod.paths = Module._nodeModulePaths('/sandbox');
let lookup = () => undefined;
try {
  // a direct eval after the program, in its own scope, finds its top-level functions, consts and classes
  const wrapped = vm.runInThisContext(Module.wrap(source + '\n;return function (name) { return eval(name); };'), { filename });
  const got = wrapped.call(mod.exports, mod.exports, Module.createRequire(filename), mod, filename, '/sandbox');
  if (typeof got === 'function') lookup = got;
} catch (e) {
  try { console.error(e); } catch {}
  send({ op: 'loaderror', error: describe(e) }, 4);
  exit(1);
}
function resolve(name) {
  if (!IDENT.test(name)) return undefined;
  let v;
  try { v = lookup(name); } catch { v = undefined; }
  const ex = mod.exports;
  if (typeof v !== 'function' && ex && typeof ex === 'object' && Object.prototype.hasOwnProperty.call(ex, name)) v = ex[name];
  if (typeof v !== 'function' && typeof ex === 'function' && ex.name === name) v = ex;
  return typeof v === 'function' ? v : undefined;
}
const declared = new Set();
for (const m of source.matchAll(/\b(?:function\s*\*?\s*|class\s+|(?:const|let|var)\s+)([A-Za-z_$][\w$]*)/g)) declared.add(m[1]);
if (mod.exports && typeof mod.exports === 'object') for (const k of Object.keys(mod.exports)) declared.add(k);
send({ op: 'ready', names: [...declared].filter((n) => resolve(n)) }, 4);
const calls = new Channel(3);
for (;;) {
  const msg = calls.recv();
  if (msg === null) exit(0);
  let result;
  try {
    const fn = resolve(msg.name);
    if (!fn) throw new ReferenceError(msg.name + ' is not defined by the program');
    result = fn(...msg.args.map(dec));
  } catch (e) {
    if (e instanceof Error) send({ op: 'raise', type: String(e.name), message: text(e), exception: true }, 4);
    else {
      let value = null;
      try { value = enc(e); } catch {}
      send({ op: 'throw', value }, 4);
    }
    continue;
  }
  let value;
  try { value = enc(result); } catch (e) { send({ op: 'unsendable', type: e instanceof Unsendable ? e.message : describe(e) }, 4); continue; }
  send({ op: 'return', value }, 4);
}
`;

/** JavaScript, in the tests' sandbox: /sandbox/runner.js NONCE ENTRY_POINT, tests in /sandbox/test.js. */
export const JS_RUNNER =
  `'use strict';\n` +
  JS_CODEC +
  JS_CHANNEL +
  String.raw`
const vm = require('vm');
const { createRequire } = require('module');
const [NONCE, ENTRY] = process.argv.slice(2);
const replies = new Channel(4);
let calls = 0;
const ERRORS = { Error, TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError };

function end(msg, status) { send(msg, 3); process.reallyExit(status); }
const fatal = (kind, why) => end({ op: 'fatal', kind, why }, 3);
const untestable = (why) => end({ op: 'untestable', why }, 4);

function reply() {
  let msg;
  try { msg = replies.recv(); } catch (e) { fatal('protocol', 'the program sent something that is not a reply: ' + String(e.message).slice(0, 200)); }
  if (msg === null) fatal('ended', 'the program ended before the tests finished');
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) fatal('protocol', 'the program sent something that is not a reply');
  return msg;
}

function standIn(name) {
  const call = function (...args) {
    let msg;
    try { msg = { op: 'call', name, args: args.map((a) => enc(a)) }; } catch (e) { untestable('the tests pass a ' + e.message + ' to ' + name + ': only plain data crosses to the program'); }
    calls++;
    send(msg, 3);
    const r = reply();
    if (r.op === 'return') {
      try { return dec(r.value); } catch (e) { fatal('protocol', 'unreadable value from ' + name + ': ' + String(e.message).slice(0, 200)); }
    }
    if (r.op === 'raise') {
      const Ctor = Object.prototype.hasOwnProperty.call(ERRORS, r.type) ? ERRORS[r.type] : Error;
      const err = new Ctor(String(r.message).slice(0, 500));
      if (Ctor === Error && typeof r.type === 'string') err.name = r.type.slice(0, 80);
      throw err;
    }
    if (r.op === 'throw') {
      let v;
      try { v = dec(r.value); } catch { fatal('protocol', 'unreadable thrown value from ' + name); }
      throw v;
    }
    if (r.op === 'unsendable') fatal('unsendable', name + ' returned a ' + String(r.type).slice(0, 80) + ': only plain data (undefined, null, booleans, numbers, bigints, strings, arrays, plain objects, Map, Set) is compared');
    fatal('protocol', 'the program sent ' + JSON.stringify(String(r.op)).slice(0, 40) + ' instead of a reply');
  };
  Object.defineProperty(call, 'name', { value: name });
  return call;
}

function where(e) {
  const m = e && typeof e.stack === 'string' ? /\/sandbox\/test\.js:(\d+)/.exec(e.stack) : null;
  return m ? ' (test line ' + m[1] + ')' : '';
}
function shown(v) {
  try { return JSON.stringify(v) ?? String(v); } catch { return typeof v; }
}
const describe = (e) => (e instanceof Error ? e.name + ': ' + e.message : 'the tests ended with a thrown ' + shown(e)).replace(/\s+/g, ' ').slice(0, 300) + where(e);
process.on('uncaughtException', (e) => end({ op: 'fail', error: describe(e) }, 1));
process.on('unhandledRejection', (e) => end({ op: 'fail', error: describe(e) }, 1));

(async () => {
  const ready = reply();
  if (ready.op === 'loaderror') fatal('load', 'the program raised while loading: ' + String(ready.error).slice(0, 500));
  if (ready.op !== 'ready' || !Array.isArray(ready.names)) fatal('protocol', 'the program did not start as expected');
  globalThis.require = createRequire('/sandbox/test.js');
  if (fs.existsSync('/sandbox/prompt.js')) {
    const prompt = fs.readFileSync('/sandbox/prompt.js', 'utf8');
    try { vm.runInThisContext(prompt, { filename: '/sandbox/prompt.js' }); } catch {}
  }
  // only names that would otherwise be undefined: the program cannot shadow a global or a helper of the prompt
  for (const n of ready.names) {
    if (typeof n === 'string' && /^[A-Za-z_$][\w$]*$/.test(n) && !(n in globalThis) && n !== ENTRY) {
      let defined = true;
      try { vm.runInThisContext(n); } catch { defined = false; }
      if (!defined) globalThis[n] = standIn(n);
    }
  }
  const entry = ENTRY ? standIn(ENTRY) : null;
  if (entry) globalThis[ENTRY] = entry;
  const source = fs.readFileSync('/sandbox/test.js', 'utf8');
  let script;
  try { script = new vm.Script(source, { filename: '/sandbox/test.js' }); } catch (e) { untestable('the tests do not compile: ' + e.message); }
  try {
    script.runInThisContext();
    if (entry && /\bcheck\b/.test(source)) {
      let check;
      try { check = vm.runInThisContext('check'); } catch {}
      if (typeof check !== 'function') untestable('the tests define no check function');
      await check(entry);
    }
  } catch (e) {
    try { console.error(e); } catch {}
    end({ op: 'fail', error: describe(e) }, 1);
  }
  if (calls === 0) untestable('the tests never call the program');
  end({ op: 'done', nonce: NONCE, calls }, 0);
})();
`;
