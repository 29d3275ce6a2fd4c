/**
 * The code verifier's sandbox against hostile programs: each one is contained, scored as failed with a reason, and
 * the test process (standing in for the worker) stays healthy. Needs bubblewrap (`apt-get install -y bubblewrap`).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractCode, parseCodeTests, verifyCode } from '../../activities/verify/code';
import { describeSandbox, runSandboxed, sandboxProblem } from '../../activities/verify/sandbox';

const repoRoot = path.resolve(__dirname, '..', '..');
const benchDir = process.env.DISTILLERY_BENCHMARKS ?? path.join(repoRoot, '..', 'shared', 'data', 'benchmarks');

const py = (code: string) => `Here is my solution.\n\n\`\`\`python\n${code}\n\`\`\`\n`;
const js = (code: string) => `<think>\nsimple\n</think>\n\n\`\`\`javascript\n${code}\n\`\`\``;
const ADD_CASES = {
  cases: [
    { input: '1 2\n', output: '3\n' },
    { input: '10 -4\n', output: '6' },
  ],
};

/**
 * Sandbox processes still alive: descendants of this test process (bwrap and everything under it), and processes of
 * the sandbox's fresh uids (≥ 200000) among them. Only this process's own tree is looked at, so sandboxes of other
 * test files running at the same time do not count.
 */
function strayProcesses(): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,uid=,comm='], { encoding: 'utf8' });
  const procs = out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map(([pid, ppid, uid, ...comm]) => ({
      pid: Number(pid),
      ppid: Number(ppid),
      uid: Number(uid),
      comm: comm.join(' '),
    }));
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) {
      if (!mine.has(p.pid) && mine.has(p.ppid)) {
        mine.add(p.pid);
        grew = true;
      }
    }
  }
  return procs
    .filter((p) => p.pid !== process.pid && mine.has(p.pid) && p.comm !== 'ps')
    .map((p) => `${p.pid} uid=${p.uid} ${p.comm}`);
}

beforeAll(async () => {
  const problem = await sandboxProblem();
  if (problem) throw new Error(`sandbox unavailable: ${problem}`);
  console.log(`sandbox: ${describeSandbox()}`);
});

afterAll(() => {
  expect(strayProcesses()).toEqual([]);
});

describe('extraction and tests format', () => {
  test('last fenced block of the final answer', () => {
    const r =
      '<think>\n```python\nprint(1)\n```\n</think>\nFirst:\n```py\nprint(2)\n```\nFinal:\n```python\nprint(3)\n```';
    expect(extractCode(r)).toEqual({ code: 'print(3)', tag: 'python', method: 'fence' });
    expect(extractCode('<think>\n```python\nprint(1)\n```\n</think>\nno code')?.method).toBe('fence_in_think');
    expect(extractCode('<think>\n```python\nprint(1)\n```\n and then')).toBeNull(); // truncated in the reasoning
    expect(extractCode('just words')).toBeNull();
    expect(extractCode('```js\nconsole.log(1)')).toEqual({ code: 'console.log(1)', tag: 'js', method: 'fence' });
  });

  test('tests: JSON string or object, HumanEval field names, fail closed on junk', () => {
    expect(parseCodeTests(JSON.stringify(ADD_CASES))?.cases).toHaveLength(2);
    expect(parseCodeTests({ test: 'def check(c): pass', entry_point: 'f', prompt: 'def f():\n' })?.entryPoint).toBe(
      'f',
    );
    for (const bad of [
      '',
      'not json',
      '{}',
      '[]',
      { cases: [] },
      { cases: [{ input: 1, output: '2' }] },
      { test: 'x', entry_point: 'a; import os' },
      { language: 'cobol', test: 'x' },
    ]) {
      expect(parseCodeTests(bad)).toBeNull();
    }
  });
});

describe('correct code passes', () => {
  test('python, stdin/stdout cases', async () => {
    const v = await verifyCode(py('a, b = map(int, input().split())\nprint(a + b)'), ADD_CASES);
    expect(v).toMatchObject({ verdict: 'correct', passed: 2, total: 2 });
  });

  test('javascript, stdin/stdout cases', async () => {
    const code =
      "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(a + b);";
    const v = await verifyCode(js(code), { ...ADD_CASES, language: 'javascript' });
    expect(v).toMatchObject({ verdict: 'correct', passed: 2, total: 2 });
  });

  test('javascript, assertion style', async () => {
    const tests = {
      language: 'javascript',
      test: "const assert = require('assert');\nfunction check(f) { assert.strictEqual(f(2, 3), 5); }",
      entry_point: 'add',
    };
    expect((await verifyCode(js('function add(a, b) { return a + b; }'), tests)).verdict).toBe('correct');
    const bad = await verifyCode(js('function add(a, b) { return a - b; }'), tests);
    expect(bad).toMatchObject({ verdict: 'incorrect', failure: 'wrong_answer' });
    expect(bad.reason).toMatch(/AssertionError|Expected values/);
  });

  test('the program may write in its own temp dir (its working directory)', async () => {
    const v = await verifyCode(
      py(
        "open('scratch.txt', 'w').write('7')\nopen('/tmp/other.txt', 'w').write('x')\nprint(open('scratch.txt').read())",
      ),
      { cases: [{ output: '7' }] },
    );
    expect(v.verdict).toBe('correct');
  });

  test('wrong output, crash and wrong language are failures with a reason', async () => {
    const wrong = await verifyCode(py('a, b = map(int, input().split())\nprint(a - b)'), ADD_CASES);
    expect(wrong).toMatchObject({ verdict: 'incorrect', failure: 'wrong_answer', passed: 0 });
    expect(wrong.reason).toContain('case 1/2: wrong output: expected "3", got "-1"');
    const crash = await verifyCode(py('raise ValueError("boom")'), ADD_CASES);
    expect(crash).toMatchObject({ verdict: 'incorrect', failure: 'runtime_error' });
    expect(crash.reason).toContain('ValueError: boom');
    expect((await verifyCode(js('console.log(3)'), { ...ADD_CASES, language: 'python' })).failure).toBe(
      'wrong_language',
    );
    expect((await verifyCode('I would write a loop.', ADD_CASES)).verdict).toBe('no_answer');
    expect((await verifyCode(py('print(3)'), 'not json')).verdict).toBe('unparseable_gold');
  });
});

describe('hostile code is contained and scored as failed', () => {
  test('opening a socket: no network, not even the host loopback', async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.end('hello\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      // prints the expected answer only if it reached a network: contained ⇒ the sample fails
      const code = [
        'import socket',
        'for host, port in [("127.0.0.1", ' + port + '), ("1.1.1.1", 80), ("pypi.org", 443)]:',
        '    try:',
        '        socket.create_connection((host, port), timeout=2).close()',
        '        print("ESCAPED")',
        '        break',
        '    except OSError as e:',
        '        last = e',
        'else:',
        '    raise last',
      ].join('\n');
      const v = await verifyCode(py(code), { cases: [{ output: 'ESCAPED' }] });
      expect(v).toMatchObject({ verdict: 'incorrect', failure: 'runtime_error' });
      expect(v.reason).toMatch(/OSError|gaierror|unreachable|refused|resolution/i);
      expect(connections).toBe(0);
      const jsv = await verifyCode(
        js(
          `const s = require('net').connect(${port}, '127.0.0.1', () => { console.log('ESCAPED'); process.exit(0); });\ns.on('error', (e) => { console.error(e.message); process.exit(3); });`,
        ),
        { language: 'javascript', cases: [{ output: 'ESCAPED' }] },
      );
      expect(jsv).toMatchObject({ verdict: 'incorrect', failure: 'runtime_error' });
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  });

  test('writing outside its temp dir: read-only system, host paths absent', async () => {
    const hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-escape-'));
    fs.chmodSync(hostDir, 0o777);
    const targets = [
      path.join(hostDir, 'pwned'),
      path.join(repoRoot, 'pwned-by-sandbox'),
      '/etc/pwned',
      '/usr/pwned',
      '/root/pwned',
      '/sandbox/main.py',
      '/dev/shm/pwned',
      '/var/tmp/pwned',
    ];
    try {
      const code = [
        'import os',
        `targets = ${JSON.stringify(targets)}`,
        'wrote = []',
        'for t in targets:',
        '    try:',
        '        with open(t, "w") as f: f.write("x")',
        '        wrote.append(t)',
        '    except OSError:',
        '        pass',
        'print("ESCAPED" if wrote else "contained", wrote)',
        'raise SystemExit(0 if wrote else 1)',
      ].join('\n');
      const v = await verifyCode(py(code), { cases: [{ output: 'ESCAPED' }] });
      expect(v.verdict).toBe('incorrect');
      expect(v.reason).toMatch(/exit 1|wrong output/);
      for (const t of targets.slice(0, 2)) expect(fs.existsSync(t)).toBe(false);
      expect(fs.readdirSync(hostDir)).toEqual([]);
    } finally {
      fs.rmSync(hostDir, { recursive: true, force: true });
    }
  });

  test('the host is not visible: no /work, /home or /root contents', async () => {
    const r = await runSandboxed({
      language: 'python',
      files: {
        'main.py':
          'import os\nprint(sorted(os.listdir("/")))\nprint(os.path.exists("/work"), os.listdir("/root") if os.path.isdir("/root") else None)',
      },
      main: 'main.py',
    });
    expect(r.status).toBe('ok');
    expect(r.stdout).not.toMatch(/'work'|'home'|'srv'/);
    expect(r.stdout).toContain('False');
  });

  test('no user namespace can be made inside (bwrap --disable-userns), and the program is not root', async () => {
    const code = [
      'import ctypes, os',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'r = libc.unshare(0x10000000)  # CLONE_NEWUSER',
      'print(r, ctypes.get_errno(), os.getuid())',
    ].join('\n');
    const r = await runSandboxed({ language: 'python', files: { 'main.py': code }, main: 'main.py' });
    expect(r.status).toBe('ok');
    const [ret, errno, uid] = r.stdout.trim().split(' ').map(Number);
    expect({ ret, refused: errno > 0, root: uid === 0 }).toEqual({ ret: -1, refused: true, root: false });
  });

  test('fork bomb: the process limit holds and the wall-clock timeout kills the whole tree', async () => {
    const before = Date.now();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 100); // the worker's event loop keeps running meanwhile
    const v = await verifyCode(
      py('import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass'),
      { cases: [{ output: 'x' }] },
      { timeoutSeconds: 3, maxProcesses: 16 },
    );
    clearInterval(ticker);
    const elapsed = Date.now() - before;
    expect(v).toMatchObject({ verdict: 'incorrect' });
    expect(v.failure).toMatch(/timeout|cpu_limit|signal/);
    expect(elapsed).toBeLessThan(15000);
    expect(ticks).toBeGreaterThan((elapsed / 100) * 0.3);
    await new Promise((r) => setTimeout(r, 300));
    expect(strayProcesses()).toEqual([]);
    // the host can still start processes and the sandbox still works
    expect(execFileSync('true').length).toBe(0);
    expect((await verifyCode(py('print(3)'), { cases: [{ output: '3' }] })).verdict).toBe('correct');
  });

  test('fork bomb in javascript (child_process)', async () => {
    const code =
      "const cp = require('child_process');\nfor (;;) { try { cp.spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore', detached: true }); } catch (e) {} }";
    const v = await verifyCode(js(code), { language: 'javascript', cases: [{ output: 'x' }] }, { timeoutSeconds: 3 });
    expect(v.verdict).toBe('incorrect');
    await new Promise((r) => setTimeout(r, 300));
    expect(strayProcesses()).toEqual([]);
  });

  test('allocating 10 GB: stopped by the memory limit', async () => {
    const rssBefore = process.memoryUsage().rss;
    const once = await verifyCode(py('x = bytearray(10 * 1024**3)\nprint(len(x))'), {
      cases: [{ output: String(10 * 1024 ** 3) }],
    });
    expect(once).toMatchObject({ verdict: 'incorrect', failure: 'memory_limit' });
    expect(once.reason).toContain('MemoryError');
    const gradual = await verifyCode(
      py('chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024**2))'),
      { cases: [{ output: 'x' }] },
      { memoryMb: 256 },
    );
    expect(gradual).toMatchObject({ verdict: 'incorrect', failure: 'memory_limit' });
    const jsBuf = await verifyCode(js('const b = new ArrayBuffer(10 * 1024 ** 3);\nconsole.log(b.byteLength);'), {
      language: 'javascript',
      cases: [{ output: String(10 * 1024 ** 3) }],
    });
    expect(jsBuf).toMatchObject({ verdict: 'incorrect', failure: 'memory_limit' });
    const jsHeap = await verifyCode(
      js('const a = [];\nfor (;;) a.push(new Array(1e6).fill(1.5));'),
      { language: 'javascript', cases: [{ output: 'x' }] },
      { memoryMb: 256 },
    );
    expect(jsHeap).toMatchObject({ verdict: 'incorrect', failure: 'memory_limit' });
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 ** 2);
  });

  test('busy loop: CPU-time limit; sleeping forever: wall-clock timeout', async () => {
    const cpu = await verifyCode(
      py('while True:\n    pass'),
      { cases: [{ output: 'x' }] },
      { timeoutSeconds: 5, cpuSeconds: 1 },
    );
    expect(cpu).toMatchObject({ verdict: 'incorrect', failure: 'cpu_limit' });
    const t0 = Date.now();
    const sleepy = await verifyCode(
      py('import time\ntime.sleep(3600)'),
      { cases: [{ output: 'x' }] },
      { timeoutSeconds: 1 },
    );
    expect(sleepy).toMatchObject({ verdict: 'incorrect', failure: 'timeout' });
    expect(sleepy.reason).toContain('wall-clock timeout (1s)');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('flooding stdout: output limit', async () => {
    const v = await verifyCode(py('while True:\n    print("x" * 10000)'), { cases: [{ output: 'x' }] });
    expect(v).toMatchObject({ verdict: 'incorrect', failure: 'output_limit' });
  });
});

describe('HumanEval-style tasks (prompt + completion, check(candidate))', () => {
  const file = path.join(benchDir, 'humaneval.jsonl');
  const rows: Array<{
    task_id: string;
    prompt: string;
    canonical_solution: string;
    test: string;
    entry_point: string;
  }> = fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
    : [];

  test('benchmark file is there (CI has ../shared/data/benchmarks beside the clone)', () => {
    expect(rows.length).toBeGreaterThan(0);
  });

  test('the canonical completion passes, a wrong one fails, whole-function answers pass too', async () => {
    for (const item of rows.slice(0, 6)) {
      const tests = { prompt: item.prompt, test: item.test, entry_point: item.entry_point };
      // completion style, bare (as HumanEval samples are), and fenced whole function
      const bare = await verifyCode(item.canonical_solution, tests);
      expect([item.task_id, bare.verdict, bare.reason]).toEqual([item.task_id, 'correct', expect.any(String)]);
      const whole = await verifyCode(py(item.prompt + item.canonical_solution), tests);
      expect([item.task_id, whole.verdict]).toEqual([item.task_id, 'correct']);
      const wrong = await verifyCode(py(`${item.prompt}    return None\n`), tests);
      expect([item.task_id, wrong.verdict]).toEqual([item.task_id, 'incorrect']);
    }
  });
});
