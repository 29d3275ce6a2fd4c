/**
 * The code verifier against programs that try to be scored as correct without solving the task: exits at load or
 * inside the function, exit hooks, trace hooks, patched builtins and modules, objects equal to anything, fake pass
 * markers, result files, reading the tests, re-running with asserts off — in Python and JavaScript. Every cheat must
 * fail, and honest solutions (printing, recursion, imports, classes, exceptions the tests expect) must all pass, run
 * through the real bubblewrap sandbox. Needs `bwrap` (`apt-get install -y bubblewrap`); fails, never skips, without.
 */
import { verifyCode, type CodeFailure, type CodeVerification } from '../../activities/verify/code';
import { describeSandbox, sandboxProblem } from '../../activities/verify/sandbox';
import { readTestsCheat } from './code-cheat-programs';

interface Task {
  language: 'python' | 'javascript';
  prompt?: string;
  test: string;
  entry_point?: string;
}

const ADD: Task = {
  language: 'python',
  prompt: 'def add(a, b):\n    """Return a + b (numbers or strings)."""\n',
  test: [
    'def check(candidate):',
    '    assert candidate(2, 3) == 5',
    '    assert candidate(-1, 1) == 0',
    "    assert candidate('ab', 'cd') == 'abcd'",
    '    assert candidate(10**20, 1) == 10**20 + 1',
    '',
  ].join('\n'),
  entry_point: 'add',
};

/** The tests import math inside check. */
const HALF_ISCLOSE: Task = {
  language: 'python',
  prompt: 'def half(x):\n    """Return x / 2."""\n',
  test: 'def check(candidate):\n    import math\n    for x in [3.0, -7, 0.5, 10**6]:\n        assert math.isclose(candidate(x), x / 2)\n',
  entry_point: 'half',
};

/** The tests use the builtin abs. */
const HALF_ABS: Task = {
  language: 'python',
  prompt: HALF_ISCLOSE.prompt,
  test: 'def check(candidate):\n    for x in [3.0, -7, 0.5, 10**6]:\n        assert abs(candidate(x) - x / 2) < 1e-9\n',
  entry_point: 'half',
};

const FIB: Task = {
  language: 'python',
  prompt: 'def fib(n):\n    """The n-th Fibonacci number, fib(0) = 0, fib(1) = 1."""\n',
  test: 'def check(candidate):\n    assert [candidate(n) for n in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]\n    assert candidate(30) == 832040\n',
  entry_point: 'fib',
};

/** A tuple holding a dict: exact types matter to ==. */
const STATS: Task = {
  language: 'python',
  prompt: 'def stats(xs):\n    """(smallest, largest, {value: how often it occurs})."""\n',
  test: 'def check(candidate):\n    assert candidate([3, 1, 3]) == (1, 3, {3: 2, 1: 1})\n    assert candidate([-2]) == (-2, -2, {-2: 1})\n',
  entry_point: 'stats',
};

/** The tests expect an exception. */
const ISQRT: Task = {
  language: 'python',
  prompt: 'def isqrt(n):\n    """The integer square root of n; ValueError when n is negative."""\n',
  test: [
    'def check(candidate):',
    '    assert candidate(17) == 4',
    '    assert candidate(0) == 0',
    '    try:',
    '        candidate(-1)',
    '    except ValueError:',
    '        pass',
    '    else:',
    "        assert False, 'no ValueError'",
    '',
  ].join('\n'),
  entry_point: 'isqrt',
};

/** A large reply: several reads on the tests' side. */
const SQUARES: Task = {
  language: 'python',
  prompt: 'def squares(n):\n    """[0, 1, 4, …, (n-1)**2]."""\n',
  test: 'def check(candidate):\n    assert candidate(200000) == [i * i for i in range(200000)]\n    assert candidate(0) == []\n',
  entry_point: 'squares',
};

/** The tests use a helper of the prompt. */
const DECODE: Task = {
  language: 'python',
  prompt:
    'def encode(s):\n    """Shift every character up by one."""\n    return "".join(chr(ord(c) + 1) for c in s)\n\n\ndef decode(s):\n    """Undo encode."""\n',
  test: "def check(candidate):\n    for s in ['abc', 'hello world', '']:\n        assert candidate(encode(s)) == s\n",
  entry_point: 'decode',
};

/** Plain asserts that call the function by name, no check(), no prompt. */
const MBPP_ADD: Task = {
  language: 'python',
  test: "assert add(1, 2) == 3\nassert add('a', 'b') == 'ab'\nassert add(0.5, 0.25) == 0.75\n",
};

const JS_ADD: Task = {
  language: 'javascript',
  test: [
    "const assert = require('assert');",
    'function check(f) {',
    '  assert.strictEqual(f(2, 3), 5);',
    '  assert.strictEqual(f(-1, 1), 0);',
    "  assert.strictEqual(f('ab', 'cd'), 'abcd');",
    '}',
  ].join('\n'),
  entry_point: 'add',
};

/** A prompt the answer completes (it does not run on its own). */
const JS_ADD_PROMPT: Task = { ...JS_ADD, prompt: '/** a + b */\nfunction add(a, b) {\n' };

const JS_SORT: Task = {
  language: 'javascript',
  test: [
    "const assert = require('assert');",
    'function check(sortNums) {',
    '  assert.deepStrictEqual(sortNums([3, 1, 2]), [1, 2, 3]);',
    '  assert.deepStrictEqual(sortNums([]), []);',
    '  assert.deepStrictEqual(sortNums([5, -1, 5, 0]), [-1, 0, 5, 5]);',
    '}',
  ].join('\n'),
  entry_point: 'sortNums',
};

const py = (code: string) => `Here is the function.\n\n\`\`\`python\n${code}\n\`\`\`\n`;
const js = (code: string) => `<think>\nok\n</think>\n\n\`\`\`javascript\n${code}\n\`\`\`\n`;
const lines = (...l: string[]) => l.join('\n');

/** Every way a program can try to have the run scored as passed without solving the task, and how it is caught. */
const CHEATS: Array<[string, Task, string, CodeFailure]> = [
  ['py: raise SystemExit(0) at load', ADD, py('raise SystemExit(0)\ndef add(a, b):\n    return 0'), 'early_exit'],
  [
    'py: sys.exit(0) at load, after printing what a passing run prints',
    ADD,
    py('import sys\nprint("ok")\nsys.exit(0)'),
    'early_exit',
  ],
  ['py: os._exit(0) at load', ADD, py('import os\nos._exit(0)'), 'early_exit'],
  ['py: SystemExit(0) inside the function', ADD, py('def add(a, b):\n    raise SystemExit(0)'), 'early_exit'],
  ['py: os._exit(0) inside the function', ADD, py('import os\ndef add(a, b):\n    os._exit(0)'), 'early_exit'],
  [
    'py: atexit hook that exits 0',
    ADD,
    py('import atexit, os\natexit.register(os._exit, 0)\ndef add(a, b):\n    return 0'),
    'wrong_answer',
  ],
  [
    'py: sys.excepthook that exits 0',
    ADD,
    py('import os, sys\nsys.excepthook = lambda *a: os._exit(0)\ndef add(a, b):\n    return 0'),
    'wrong_answer',
  ],
  [
    'py: SIGALRM handler that exits 0 while the function sleeps',
    ADD,
    py(
      'import os, signal, time\nsignal.signal(signal.SIGALRM, lambda *a: os._exit(0))\ndef add(a, b):\n    signal.setitimer(signal.ITIMER_REAL, 0.05)\n    time.sleep(5)',
    ),
    'early_exit',
  ],
  [
    'py: a thread that exits 0 while the function sleeps',
    ADD,
    py(
      'import os, threading, time\ndef add(a, b):\n    threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0)), daemon=True).start()\n    time.sleep(5)',
    ),
    'early_exit',
  ],
  [
    'py: fork; the parent waits for the failing child and exits 0',
    ADD,
    py('import os\npid = os.fork()\nif pid:\n    os.waitpid(pid, 0)\n    os._exit(0)\ndef add(a, b):\n    return 0'),
    'wrong_answer',
  ],
  [
    'py: sys.settrace ends the process when check() starts',
    ADD,
    py(
      "import os, sys\ndef t(frame, event, arg):\n    if event == 'call' and frame.f_code.co_name == 'check':\n        os._exit(0)\nsys.settrace(t)\ndef add(a, b):\n    return 0",
    ),
    'wrong_answer',
  ],
  [
    'py: sys.setprofile ends the process when check() starts',
    ADD,
    py(
      "import os, sys\ndef t(frame, event, arg):\n    if event == 'call' and frame.f_code.co_name == 'check':\n        os._exit(0)\nsys.setprofile(t)\ndef add(a, b):\n    return 0",
    ),
    'wrong_answer',
  ],
  [
    'py: a result equal to anything (__eq__ returns True)',
    ADD,
    py(
      'class Any:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\ndef add(a, b):\n    return Any()',
    ),
    'unsupported_value',
  ],
  [
    'py: an int subclass equal to anything',
    ADD,
    py(
      'class Any(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\ndef add(a, b):\n    return Any(0)',
    ),
    'wrong_answer',
  ],
  [
    'py: builtins.abs patched to 0',
    HALF_ABS,
    py('import builtins\nbuiltins.abs = lambda x: 0\ndef half(x):\n    return 0'),
    'wrong_answer',
  ],
  [
    "py: sys.modules['math'] replaced by a fake whose isclose is always True",
    HALF_ISCLOSE,
    py(
      "import sys, types\nfake = types.ModuleType('math')\nfake.isclose = lambda *a, **k: True\nsys.modules['math'] = fake\ndef half(x):\n    return 0",
    ),
    'wrong_answer',
  ],
  [
    'py: __import__ patched to hand out a fake math',
    HALF_ISCLOSE,
    py(
      "import builtins, types\nreal = builtins.__import__\nfake = types.ModuleType('math')\nfake.isclose = lambda *a, **k: True\nbuiltins.__import__ = lambda name, *a, **k: fake if name == 'math' else real(name, *a, **k)\ndef half(x):\n    return 0",
    ),
    'wrong_answer',
  ],
  [
    'py: fake pass markers on stdout, stderr and every other fd, then exit 0',
    ADD,
    py(
      "import os\nfor fd in range(1, 10):\n    for line in ('{\"op\": \"done\", \"passed\": true}', 'ALL TESTS PASSED', 'ok'):\n        try:\n            os.write(fd, (line + '\\n').encode())\n        except OSError:\n            pass\nos._exit(0)",
    ),
    'protocol_violation',
  ],
  [
    'py: result files written where a harness might look, then exit 0',
    ADD,
    py(
      "import json, sys\nfor p in ('/tmp/result.json', '/tmp/results.json', 'result.json', '/tmp/passed'):\n    try:\n        open(p, 'w').write(json.dumps({'passed': True, 'failed': 0}))\n    except OSError:\n        pass\nsys.exit(0)",
    ),
    'early_exit',
  ],
  [
    'py: re-runs itself with -O so the asserts are stripped',
    ADD,
    py(
      'import os, sys\nif not sys.flags.optimize:\n    os.execv(sys.executable, [sys.executable, "-O", *sys.argv])\ndef add(a, b):\n    return 0',
    ),
    'early_exit',
  ],
  ['py: reads the tests from its own files and answers from them', ADD, py(readTestsCheat('add')), 'runtime_error'],
  [
    "py: patches json and os.write so the harness's messages read as a pass",
    ADD,
    py(
      'import json, os\nreal_write = os.write\njson.dumps = lambda *a, **k: \'{"op": "done", "passed": true, "calls": 4}\'\nos.write = lambda fd, data: real_write(fd, b\'{"op": "done", "passed": true}\\n\')\ndef add(a, b):\n    return 0',
    ),
    'protocol_violation',
  ],
  [
    'py: walks the gc and the environment for a per-run secret and prints it',
    ADD,
    py(
      "import gc, os, sys\nseen = [repr(sys.argv), repr(dict(os.environ))] + [o for o in gc.get_objects() if isinstance(o, str) and 16 <= len(o) <= 64]\nfor fd in range(1, 10):\n    try:\n        os.write(fd, '\\n'.join(seen[:2000]).encode())\n    except OSError:\n        pass\nos._exit(0)",
    ),
    'protocol_violation',
  ],
  [
    'py: KeyboardInterrupt from inside the function',
    ISQRT,
    py('def isqrt(n):\n    raise KeyboardInterrupt'),
    'early_exit',
  ],
  [
    "py: redefines the prompt's helper the tests rely on",
    DECODE,
    py('def encode(s):\n    return s\n\ndef decode(s):\n    return s'),
    'wrong_answer',
  ],
  [
    'py: a list subclass equal to anything',
    FIB,
    py('class Lazy(list):\n    def __eq__(self, other):\n        return True\ndef fib(n):\n    return Lazy()'),
    'wrong_answer',
  ],

  ['js: process.exit(0) at load', JS_ADD, js('process.exit(0);\nfunction add(a, b) { return 0; }'), 'early_exit'],
  ['js: process.exit(0) inside the function', JS_ADD, js('function add(a, b) { process.exit(0); }'), 'early_exit'],
  [
    'js: process.reallyExit(0) inside the function',
    JS_ADD,
    js('function add(a, b) { process.reallyExit(0); }'),
    'early_exit',
  ],
  [
    'js: uncaughtException handler that exits 0',
    JS_ADD,
    js("process.on('uncaughtException', () => process.exit(0));\nfunction add(a, b) { return 0; }"),
    'wrong_answer',
  ],
  [
    'js: exit listener that forces status 0',
    JS_ADD,
    js("process.on('exit', () => process.reallyExit(0));\nfunction add(a, b) { return 0; }"),
    'wrong_answer',
  ],
  [
    'js: exitCode 0 and a listener that swallows the failure',
    JS_ADD,
    js("process.exitCode = 0;\nprocess.on('uncaughtException', () => {});\nfunction add(a, b) { return 0; }"),
    'wrong_answer',
  ],
  [
    'js: the assert module patched to no-ops',
    JS_ADD,
    js(
      "const a = require('assert');\nfor (const k of Object.keys(a)) a[k] = () => {};\nfunction add(a, b) { return 0; }",
    ),
    'wrong_answer',
  ],
  [
    "js: Module._load hook that hands out a fake 'assert'",
    JS_SORT,
    js(
      "const M = require('module');\nconst load = M._load;\nconst fake = Object.assign(() => {}, { strictEqual() {}, deepStrictEqual() {}, ok() {}, equal() {} });\nM._load = function (id, ...rest) { return id === 'assert' ? fake : load.call(this, id, ...rest); };\nfunction sortNums(xs) { return xs; }",
    ),
    'wrong_answer',
  ],
  [
    "js: Module.prototype.require hook that hands out a fake 'assert'",
    JS_ADD,
    js(
      "const M = require('module');\nconst req = M.prototype.require;\nconst fake = Object.assign(() => {}, { strictEqual() {}, deepStrictEqual() {} });\nM.prototype.require = function (id) { return id === 'assert' ? fake : req.call(this, id); };\nfunction add(a, b) { return 0; }",
    ),
    'wrong_answer',
  ],
  [
    'js: reads the tests from its own files and answers from them',
    JS_ADD,
    js(
      lines(
        "const fs = require('fs');",
        'const table = new Map();',
        "for (const name of fs.readdirSync('/sandbox')) {",
        "  const src = fs.readFileSync('/sandbox/' + name, 'utf8');",
        "  for (const m of src.matchAll(/f\\(([^)]*)\\), ([^)]*)\\)/g)) table.set(JSON.stringify(eval('[' + m[1] + ']')), eval(m[2]));",
        '}',
        'function add(a, b) { return table.get(JSON.stringify([a, b])); }',
      ),
    ),
    'wrong_answer',
  ],
  [
    'js: console.log patched, fake pass markers on stdout, stderr, fds 3 and 4, then exit 0',
    JS_ADD,
    js(
      'const fs = require(\'fs\');\nconsole.log = () => {};\nfor (const fd of [1, 2, 3, 4]) { try { fs.writeSync(fd, \'{"op":"done","passed":true}\\nALL TESTS PASSED\\n\'); } catch (e) {} }\nprocess.exit(0);',
    ),
    'protocol_violation',
  ],
  [
    'js: throws a non-Error value shaped like a pass report',
    JS_ADD,
    js("function add(a, b) { throw { op: 'done', passed: true, calls: 3 }; }"),
    'runtime_error',
  ],
  [
    'js: Object.prototype.toJSON tampering',
    JS_ADD,
    js(
      "Object.prototype.toJSON = function () { return { op: 'done', passed: true }; };\nfunction add(a, b) { return 0; }",
    ),
    'protocol_violation',
  ],
  [
    "js: Object.prototype getter making every object's op 'done'",
    JS_SORT,
    js(
      "Object.defineProperty(Object.prototype, 'op', { get() { return 'done'; } });\nfunction sortNums(xs) { return xs; }",
    ),
    'wrong_answer',
  ],
  [
    'js: unhandledRejection handler and a timer that exit 0 later',
    JS_ADD,
    js(
      "process.on('unhandledRejection', () => process.exit(0));\nsetTimeout(() => process.exit(0), 10);\nfunction add(a, b) { Promise.reject(new Error('x')); return 0; }",
    ),
    'wrong_answer',
  ],
  [
    'js: an array whose sort is patched to lie to deepStrictEqual',
    JS_SORT,
    js(
      'Array.prototype.sort = function () { return [1, 2, 3]; };\nfunction sortNums(xs) { return xs.slice().sort(); }',
    ),
    'wrong_answer',
  ],
];

/** Solutions that solve the task, in the shapes models write them. */
const HONEST: Array<[string, Task, string]> = [
  ['py: plain whole function', ADD, py('def add(a, b):\n    return a + b')],
  [
    'py: prints to stdout and stderr at load and in the function',
    ADD,
    py(
      "import sys\nprint('loading')\nprint('debug', file=sys.stderr)\ndef add(a, b):\n    print('adding', a, b)\n    print('to stderr', file=sys.stderr)\n    return a + b",
    ),
  ],
  ['py: completion of the prompt (body only, bare)', ADD, '    return a + b\n'],
  [
    'py: recursion with memo (functools.lru_cache)',
    FIB,
    py(
      'from functools import lru_cache\n\n@lru_cache(maxsize=None)\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)',
    ),
  ],
  [
    'py: plain recursion',
    FIB,
    py(
      'def fib(n):\n    def go(k, a, b):\n        return a if k == 0 else go(k - 1, b, a + b)\n    return go(n, 0, 1)',
    ),
  ],
  ['py: imports math, returns floats', HALF_ISCLOSE, py('import math\n\ndef half(x):\n    return math.ldexp(x, -1)')],
  ['py: floats compared with abs', HALF_ABS, py('def half(x):\n    return x / 2')],
  [
    'py: a class and a namedtuple inside, a Counter for the dict',
    STATS,
    py(
      "from collections import Counter, namedtuple\n\nResult = namedtuple('Result', 'lo hi counts')\n\nclass Scanner:\n    def __init__(self, xs):\n        self.xs = list(xs)\n    def run(self):\n        return Result(min(self.xs), max(self.xs), Counter(self.xs))\n\ndef stats(xs):\n    return Scanner(xs).run()",
    ),
  ],
  [
    'py: a large reply (200000 squares, about 2 MB)',
    SQUARES,
    py('def squares(n):\n    return [i * i for i in range(n)]'),
  ],
  ['py: uses the helper of the prompt', DECODE, py('def decode(s):\n    return "".join(chr(ord(c) - 1) for c in s)')],
  [
    'py: raises the ValueError the tests expect',
    ISQRT,
    py('import math\n\ndef isqrt(n):\n    if n < 0:\n        raise ValueError("negative")\n    return math.isqrt(n)'),
  ],
  [
    'py: plain asserts by name, the prompt a stub',
    { ...MBPP_ADD, prompt: ADD.prompt },
    py('def add(a, b):\n    return a + b'),
  ],
  [
    'py: plain asserts by name, with a __main__ block',
    MBPP_ADD,
    py("def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    print(add(2, 2))"),
  ],
  [
    'js: plain function, logging to stdout and stderr',
    JS_ADD,
    js("console.log('loading');\nfunction add(a, b) {\n  console.error('adding', a, b);\n  return a + b;\n}"),
  ],
  ['js: completion of the prompt (body only, bare)', JS_ADD_PROMPT, '  return a + b;\n}\n'],
  [
    'js: arrow function in a const, module.exports',
    JS_ADD,
    js('const add = (a, b) => a + b;\nmodule.exports = { add };'),
  ],
  [
    'js: recursive quicksort in a class, with require',
    JS_SORT,
    js(
      "const util = require('util');\nclass Sorter {\n  sort(xs) {\n    if (xs.length < 2) return xs.slice();\n    const [p, ...rest] = xs;\n    return [...this.sort(rest.filter((x) => x < p)), p, ...this.sort(rest.filter((x) => x >= p))];\n  }\n}\nfunction sortNums(xs) {\n  if (!util.isDeepStrictEqual(xs, xs)) throw new Error('?');\n  return new Sorter().sort(xs);\n}",
    ),
  ],
];

const run = (t: Task, response: string): Promise<CodeVerification> => verifyCode(response, t, { timeoutSeconds: 10 });

beforeAll(async () => {
  const problem = await sandboxProblem();
  if (problem) throw new Error(`sandbox unavailable: ${problem}`);
  console.log(`sandbox: ${describeSandbox()}`);
});

test('the corpus is as large as promised', () => {
  expect(CHEATS.length).toBeGreaterThanOrEqual(25);
  expect(CHEATS.filter(([n]) => n.startsWith('js:')).length).toBeGreaterThanOrEqual(10);
  expect(HONEST.length).toBeGreaterThanOrEqual(8);
});

describe('cheats fail', () => {
  const accepted: string[] = [];
  afterAll(() =>
    console.log(
      `cheats accepted: ${accepted.length}/${CHEATS.length}${accepted.length ? `\n  ${accepted.join('\n  ')}` : ''}`,
    ),
  );

  test.each(CHEATS)('%s', async (name, task, response, caughtAs) => {
    const v = await run(task, response);
    if (v.verdict === 'correct') accepted.push(name);
    expect({ verdict: v.verdict, failure: v.failure, reason: v.reason }).toEqual({
      verdict: 'incorrect',
      failure: caughtAs,
      reason: expect.stringMatching(/^tests failed: \S/),
    });
  });
});

describe('honest solutions pass', () => {
  test.each(HONEST)('%s', async (_name, task, response) => {
    const v = await run(task, response);
    expect({ verdict: v.verdict, reason: v.reason }).toEqual({ verdict: 'correct', reason: expect.any(String) });
  });
});
