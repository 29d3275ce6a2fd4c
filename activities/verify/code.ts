/**
 * Code verifier: run the model's program against the task's tests in the sandbox (sandbox.ts).
 *
 * The program is the last fenced code block of the final answer (after </think>; the reasoning only when the final
 * part has none; an unclosed <think> is a truncated generation and has no program). Tests, as JSON (a sample's
 * `answer` for code tasks, or a row's `tests`):
 *
 *   { "language": "python" | "javascript",                           (default: the fence's language, else python)
 *     "cases": [ { "input": "1 2\n", "output": "3\n" }, … ],           stdin → expected stdout, one run per case
 *     "test": "def check(candidate): …", "entry_point": "add",         assertion style (HumanEval): the program is
 *     "prompt": "def add(a, b):\n    \"\"\"…\"\"\"\n" }                 prompt + completion, the tests call it
 *
 * An io case passes when the program exits 0 and its stdout equals the expected output up to trailing whitespace on
 * each line and trailing blank lines: the output is the evidence. Assertion-style tests pass only on the word of a
 * test runner that runs apart from the program and reports that every test ran and passed (isolated-tests.ts): how
 * the program exits proves nothing there, since the program runs first and could exit 0 on its own. Everything that
 * stops a run — timeout, CPU or memory limit, too much output, a crash — fails the sample with that reason. Fails
 * closed: tests that cannot be read or cannot judge a program → never correct.
 */
import { splitThink } from '../text/think';
import { runIsolatedTests, type IsolatedTestsOutcome } from './isolated-tests';
import { DEFAULT_LIMITS, runSandboxed, type SandboxLanguage, type SandboxLimits, type SandboxResult } from './sandbox';

export interface CodeCase {
  input?: string;
  output: string;
}

export interface CodeTests {
  language?: SandboxLanguage;
  cases?: CodeCase[];
  test?: string;
  entryPoint?: string;
  prompt?: string;
}

export interface CodeOptions {
  language?: SandboxLanguage;
  timeoutSeconds?: number;
  cpuSeconds?: number;
  memoryMb?: number;
  maxProcesses?: number;
}

export type CodeVerdict = 'correct' | 'incorrect' | 'no_answer' | 'unparseable_gold';

export type CodeFailure =
  | SandboxResult['status']
  | 'wrong_answer'
  | 'wrong_language'
  | 'runtime_error'
  /** The program exited (or was ended) before the tests finished. */
  | 'early_exit'
  /** The program returned something other than plain data to the tests. */
  | 'unsupported_value'
  /** The program wrote something on the tests' channel that is not a reply. */
  | 'protocol_violation';

export interface CodeVerification {
  verdict: CodeVerdict;
  /** The program that was run (the extracted code block). */
  extracted: string | null;
  reason: string;
  failure?: CodeFailure;
  passed?: number;
  total?: number;
}

const LANG_TAGS: Record<string, SandboxLanguage> = {
  python: 'python',
  py: 'python',
  python3: 'python',
  javascript: 'javascript',
  js: 'javascript',
  node: 'javascript',
  nodejs: 'javascript',
  mjs: 'javascript',
  cjs: 'javascript',
};

export interface ExtractedCode {
  code: string;
  /** The fence's language tag, lower-case ('' when none). */
  tag: string;
  method: 'fence' | 'fence_in_think' | 'bare';
}

function lastFence(text: string): { code: string; tag: string } | null {
  const re = /(^|\n)[ \t]*(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*\n([\s\S]*?)\n[ \t]*\2[ \t]*(?=\n|$)/g;
  let last: { code: string; tag: string } | null = null;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    last = { code: m[4], tag: m[3].toLowerCase() };
    re.lastIndex = m.index + m[0].length;
  }
  if (last) return last;
  // an unterminated last fence (the model stopped after the code): take it to the end
  const open = /(^|\n)[ \t]*(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*\n([\s\S]*)$/.exec(text);
  if (open && !/(```|~~~)/.test(open[4])) return { code: open[4].replace(/\s+$/, ''), tag: open[3].toLowerCase() };
  return null;
}

/** The program of a response: the last fenced block of the final answer. `bare` allows an unfenced completion. */
export function extractCode(response: string, opts: { bare?: boolean } = {}): ExtractedCode | null {
  if (!response || !response.trim()) return null;
  const { reasoning, final } = splitThink(response);
  if (final === null) return null; // truncated inside the reasoning
  const f = lastFence(final);
  if (f) return { ...f, method: 'fence' };
  if (reasoning !== null) {
    const t = lastFence(reasoning);
    if (t) return { ...t, method: 'fence_in_think' };
  }
  if (opts.bare && final.trim())
    return { code: final.replace(/^\s*\n/, '').replace(/\s+$/, ''), tag: '', method: 'bare' };
  return null;
}

/** Reads tests from a JSON string or object (HumanEval's snake_case `entry_point` accepted). Null when unusable. */
export function parseCodeTests(raw: unknown): CodeTests | null {
  let v: unknown = raw;
  if (typeof raw === 'string') {
    try {
      v = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const t: CodeTests = {};
  if (o.language !== undefined) {
    const l = LANG_TAGS[String(o.language).toLowerCase()];
    if (!l) return null;
    t.language = l;
  }
  if (o.cases !== undefined) {
    if (!Array.isArray(o.cases) || !o.cases.length) return null;
    t.cases = [];
    for (const c of o.cases) {
      if (!c || typeof c !== 'object') return null;
      const cc = c as Record<string, unknown>;
      const output = cc.output ?? cc.expected;
      if (typeof output !== 'string' && typeof output !== 'number') return null;
      if (cc.input !== undefined && typeof cc.input !== 'string') return null;
      t.cases.push({ input: cc.input as string | undefined, output: String(output) });
    }
  }
  for (const [key, alias] of [
    ['test', 'test'],
    ['entryPoint', 'entry_point'],
    ['prompt', 'prompt'],
  ] as const) {
    const val = o[key] ?? o[alias];
    if (val === undefined) continue;
    if (typeof val !== 'string') return null;
    t[key] = val;
  }
  if (t.entryPoint !== undefined && !/^[A-Za-z_$][\w$]*$/.test(t.entryPoint)) return null;
  if (!t.cases && !t.test) return null;
  return t;
}

const normOut = (s: string) =>
  s
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n')
    .replace(/\n+$/, '');

function defines(code: string, name: string, lang: SandboxLanguage): boolean {
  const n = name.replace(/\$/g, '\\$');
  const re =
    lang === 'python'
      ? new RegExp(`^(?:async\\s+)?def\\s+${n}\\s*\\(`, 'm')
      : new RegExp(
          `(?:^|\\n)\\s*(?:export\\s+)?(?:async\\s+)?(?:function\\s*\\*?\\s*${n}\\s*\\(|(?:const|let|var)\\s+${n}\\s*=)`,
        );
  return re.test(code);
}

/** The program that is run: the model's code after the prompt when it completes the prompt. Never the tests. */
export function assembleProgram(code: string, tests: CodeTests, lang: SandboxLanguage): string {
  if (!tests.prompt) return code;
  if (tests.entryPoint && defines(code, tests.entryPoint, lang)) {
    // a whole function: keep the prompt's imports and helpers (a def whose body is only a docstring is valid
    // Python), the model's definition comes later and wins
    return lang === 'python' ? `${tests.prompt}\n\n${code}` : code;
  }
  return tests.prompt + code; // a completion of the prompt's body
}

/** The informative line of a crash: the last "XxxError: …" line (Python's traceback ends with it, Node prints it
 * before the stack), else the last non-empty line. */
export function errorSummary(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() && !/^Node\.js v\d/.test(l) && !/^\s+at\s/.test(l));
  let k = -1;
  for (let j = lines.length - 1; j >= 0; j--) {
    if (/^\s*(?:Uncaught\s+)?[\w.]*(?:Error|Exception|Interrupt|Exit)\b/.test(lines[j])) {
      k = j;
      break;
    }
  }
  let msg = k >= 0 ? lines[k].trim() : (lines.at(-1) ?? '').trim();
  if (k >= 0 && /:\s*$/.test(msg) && lines[k + 1]) msg += ' ' + lines[k + 1].trim();
  return msg.slice(0, 300);
}

const lastLine = errorSummary;

const clip = (s: string, n = 80) => JSON.stringify(s.length > n ? s.slice(0, n) + '…' : s);

function describeStop(r: SandboxResult, lim: SandboxLimits): { failure: CodeFailure; why: string } {
  switch (r.status) {
    case 'timeout':
      return { failure: 'timeout', why: `wall-clock timeout (${lim.timeoutSeconds}s)` };
    case 'cpu_limit':
      return { failure: 'cpu_limit', why: `CPU-time limit (${lim.cpuSeconds ?? lim.timeoutSeconds}s)` };
    case 'memory_limit':
      return { failure: 'memory_limit', why: `memory limit (${lim.memoryMb} MiB): ${lastLine(r.stderr)}` };
    case 'output_limit':
      return { failure: 'output_limit', why: `output limit (${lim.maxOutputBytes} bytes)` };
    case 'signal':
      return {
        failure: 'signal',
        why: `killed by ${r.signal ?? `signal ${(r.exitCode ?? 0) - 128}`}: ${lastLine(r.stderr)}`,
      };
    default:
      return { failure: 'runtime_error', why: `exit ${r.exitCode}: ${lastLine(r.stderr) || '(no stderr)'}` };
  }
}

/** The verdict on an assertion-style run, from the isolated runner's outcome. */
function assertionVerdict(o: IsolatedTestsOutcome, lim: SandboxLimits, code: string, via: string): CodeVerification {
  const fail = (failure: CodeFailure, why: string): CodeVerification => ({
    verdict: 'incorrect',
    extracted: code,
    reason: `tests failed: ${why}${via}`,
    failure,
    passed: 0,
    total: 1,
  });
  switch (o.kind) {
    case 'passed':
      return {
        verdict: 'correct',
        extracted: code,
        reason: `tests passed (${o.calls} call${o.calls === 1 ? '' : 's'})${via}`,
        passed: 1,
        total: 1,
      };
    case 'failed':
      return fail(/^AssertionError\b/.test(o.error) ? 'wrong_answer' : 'runtime_error', o.error);
    case 'stopped': {
      const s = describeStop(o.result, lim);
      return fail(s.failure, s.why);
    }
    case 'broke_off': {
      const exit = o.program ? ` (${o.program.signal ?? `exit ${o.program.exitCode}`})` : '';
      if (o.reason === 'load') return fail('runtime_error', o.why);
      if (o.reason === 'ended') return fail('early_exit', `${o.why}${exit}`);
      if (o.reason === 'unsendable') return fail('unsupported_value', o.why);
      return fail('protocol_violation', o.why);
    }
    case 'untestable':
      return { verdict: 'unparseable_gold', extracted: code, reason: `the tests cannot judge a program: ${o.why}` };
    case 'no_report': {
      const s = o.result.status === 'ok' || o.result.status === 'exit' ? null : describeStop(o.result, lim);
      return fail(
        s?.failure ?? 'runtime_error',
        `the test runner gave no report${s ? ` (${s.why})` : `: ${lastLine(o.result.stderr) || `exit ${o.result.exitCode}`}`}`,
      );
    }
  }
}

/** Verify a model response against code tests. Throws SandboxUnavailableError when the sandbox cannot run here. */
export async function verifyCode(
  response: string,
  testsRaw: unknown,
  opts: CodeOptions = {},
): Promise<CodeVerification> {
  const tests = parseCodeTests(testsRaw);
  if (!tests)
    return {
      verdict: 'unparseable_gold',
      extracted: null,
      reason: 'the tests are not usable (need JSON with "cases" or "test")',
    };
  const ex = extractCode(response ?? '', { bare: !!tests.prompt });
  if (!ex) return { verdict: 'no_answer', extracted: null, reason: 'no fenced code block in the final answer' };
  const tagLang = LANG_TAGS[ex.tag];
  const lang: SandboxLanguage = opts.language ?? tests.language ?? tagLang ?? 'python';
  if (ex.tag && tagLang && tagLang !== lang) {
    return {
      verdict: 'incorrect',
      extracted: ex.code,
      reason: `code block is ${tagLang}, the task needs ${lang}`,
      failure: 'wrong_language',
    };
  }
  const limits: SandboxLimits = {
    ...DEFAULT_LIMITS,
    ...(opts.timeoutSeconds !== undefined ? { timeoutSeconds: opts.timeoutSeconds } : {}),
    ...(opts.cpuSeconds !== undefined ? { cpuSeconds: opts.cpuSeconds } : {}),
    ...(opts.memoryMb !== undefined ? { memoryMb: opts.memoryMb } : {}),
    ...(opts.maxProcesses !== undefined ? { maxProcesses: opts.maxProcesses } : {}),
  };
  const main = lang === 'python' ? 'main.py' : 'main.js';
  const via = ex.method === 'fence' ? '' : ` (${ex.method})`;

  const program = assembleProgram(ex.code, tests, lang);
  if (tests.test) {
    const o = await runIsolatedTests({
      language: lang,
      program,
      test: tests.test,
      prompt: tests.prompt,
      entryPoint: tests.entryPoint,
      limits,
    });
    const v = assertionVerdict(o, limits, ex.code, via);
    if (v.verdict !== 'correct' || !tests.cases) return v;
  }
  const cases = tests.cases ?? [];
  for (let k = 0; k < cases.length; k++) {
    const c = cases[k];
    const r = await runSandboxed({ language: lang, files: { [main]: program }, main, stdin: c.input ?? '', limits });
    const at = `case ${k + 1}/${cases.length}`;
    if (r.status !== 'ok') {
      const s = describeStop(r, limits);
      return {
        verdict: 'incorrect',
        extracted: ex.code,
        reason: `${at}: ${s.why}${via}`,
        failure: s.failure,
        passed: k,
        total: cases.length,
      };
    }
    if (normOut(r.stdout) !== normOut(c.output)) {
      return {
        verdict: 'incorrect',
        extracted: ex.code,
        reason: `${at}: wrong output: expected ${clip(normOut(c.output))}, got ${clip(normOut(r.stdout))}${via}`,
        failure: 'wrong_answer',
        passed: k,
        total: cases.length,
      };
    }
  }
  return {
    verdict: 'correct',
    extracted: ex.code,
    reason: `passed ${cases.length}/${cases.length} cases${via}`,
    passed: cases.length,
    total: cases.length,
  };
}
