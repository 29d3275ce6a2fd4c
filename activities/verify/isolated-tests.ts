/**
 * Assertion-style tests (HumanEval's `check(candidate)`, or plain asserts that call the program's functions) run apart
 * from the program, so that the program cannot decide the verdict.
 *
 * Two sandboxes at once: the program's, where a host script loads it and answers calls, and the tests', where a runner
 * executes the tests with stand-ins that forward each call to the program and decode its reply into fresh built-in
 * values (harness-scripts.ts). This process relays calls one way and replies the other. The verdict comes from the
 * runner alone, on a channel the program has no way to reach (another sandbox, another uid, another PID namespace),
 * carrying a nonce made here for this run: {op: done, nonce, calls} after every test ran and passed, and only then is
 * the answer correct. How the program ends — exit status 0 included — never counts by itself.
 *
 * Known limits: only plain data crosses (a task whose tests inspect objects of the program's own classes cannot be
 * verified, and fails), and a call's arguments are copies (a test that relies on the program mutating its argument
 * fails).
 */
import * as crypto from 'node:crypto';
import { JS_HOST, JS_RUNNER, PY_HOST, PY_RUNNER } from './harness-scripts';
import {
  startSandboxed,
  type SandboxLanguage,
  type SandboxLimits,
  type SandboxProcess,
  type SandboxResult,
} from './sandbox';

export interface IsolatedTestsRun {
  language: SandboxLanguage;
  /** The program: the model's code, after the prompt it completes. */
  program: string;
  /** The tests' source. */
  test: string;
  /** Trusted definitions the tests may use (the task's prompt); skipped when it does not run on its own. */
  prompt?: string;
  /** The function passed to `check`, when the tests define one. */
  entryPoint?: string;
  limits: SandboxLimits;
}

export type IsolatedTestsOutcome =
  /** Every test ran and passed, proven by the runner's report. */
  | { kind: 'passed'; calls: number }
  /** A test failed: an assertion, or an error the program raised that the tests did not expect. */
  | { kind: 'failed'; error: string }
  /** The program was stopped by a limit (time, CPU, memory, output) or a signal. */
  | { kind: 'stopped'; result: SandboxResult }
  /** The program did not let the tests finish: it raised while loading, exited, or broke the protocol. */
  | {
      kind: 'broke_off';
      reason: 'load' | 'ended' | 'unsendable' | 'protocol';
      why: string;
      program: SandboxResult | null;
    }
  /** These tests cannot judge any program (they never call it, do not compile, pass functions…). */
  | { kind: 'untestable'; why: string }
  /** The tests' own run ended without a report (e.g. the tests themselves ran out of time). */
  | { kind: 'no_report'; result: SandboxResult };

interface Report {
  op: 'call' | 'done' | 'fail' | 'fatal' | 'untestable';
  nonce?: string;
  calls?: number;
  error?: string;
  kind?: string;
  why?: string;
}

const LIMIT_STOPS = new Set(['timeout', 'cpu_limit', 'memory_limit', 'output_limit', 'signal']);

/** Lines from a stream, at most `maxLine` bytes each (a longer one calls `tooLong`). */
function onLines(stream: NodeJS.ReadableStream, maxLine: number, line: (s: string) => void, tooLong: () => void) {
  let buf = '';
  stream.setEncoding?.('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      line(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    if (buf.length > maxLine) {
      buf = '';
      tooLong();
    }
  });
}

export async function runIsolatedTests(run: IsolatedTestsRun): Promise<IsolatedTestsOutcome> {
  const py = run.language === 'python';
  const ext = py ? 'py' : 'js';
  const nonce = crypto.randomBytes(24).toString('hex');
  const lim = run.limits;
  // calls and replies share one budget: a program (or tests) that floods the channel is stopped like one that floods stdout
  const relayBudget = lim.maxOutputBytes * 64;

  const program: SandboxProcess = await startSandboxed({
    language: run.language,
    files: { [`main.${ext}`]: run.program, [`host.${ext}`]: py ? PY_HOST : JS_HOST },
    main: `host.${ext}`,
    limits: lim,
    channels: 2,
  });
  let tests: SandboxProcess;
  try {
    tests = await startSandboxed({
      language: run.language,
      files: {
        [`runner.${ext}`]: py ? PY_RUNNER : JS_RUNNER,
        [`test.${ext}`]: run.test,
        ...(run.prompt ? { [`prompt.${ext}`]: run.prompt } : {}),
      },
      main: `runner.${ext}`,
      args: [nonce, run.entryPoint ?? ''],
      limits: lim,
      channels: 2,
    });
  } catch (e) {
    program.stop();
    await program.result.catch(() => undefined);
    throw e;
  }

  const [toProgram, fromProgram] = program.channels;
  const [fromTests, toTests] = tests.channels;
  let relayed = 0;
  let report: Report | null = null;
  let testsEnded = false;
  let programEnded = false;

  fromProgram.on('data', (chunk: Buffer) => {
    relayed += chunk.length;
    if (relayed > relayBudget) return program.stop('output_limit');
    if (!toTests.write(chunk)) fromProgram.pause();
  });
  toTests.on('drain', () => fromProgram.resume());
  onLines(
    fromTests,
    lim.maxOutputBytes,
    (line) => {
      let msg: Report;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg && msg.op === 'call') {
        relayed += line.length + 1;
        if (relayed > relayBudget) return tests.stop('output_limit');
        toProgram.write(line + '\n');
      } else if (msg && ['done', 'fail', 'fatal', 'untestable'].includes(msg.op) && !report) report = msg;
    },
    () => tests.stop('output_limit'),
  );

  const programResult = program.result.then((r) => {
    programEnded = true;
    toTests.end(); // the tests' next read sees the end: the program is gone
    return { r, beforeTests: !testsEnded };
  });
  const testsResult = tests.result.then((r) => {
    testsEnded = true;
    if (!programEnded) program.stop();
    return r;
  });
  let both: [Awaited<typeof programResult>, SandboxResult];
  try {
    both = await Promise.all([programResult, testsResult]);
  } catch (e) {
    // one of them could not be started: neither is left running
    program.stop();
    tests.stop();
    await Promise.allSettled([program.result, tests.result]);
    throw e;
  } finally {
    for (const c of [...program.channels, ...tests.channels]) c.destroy();
  }
  const [p, t] = both;

  const rep = report as Report | null;
  if (rep?.op === 'done' && t.status === 'ok') {
    if (rep.nonce === nonce && typeof rep.calls === 'number' && rep.calls > 0)
      return { kind: 'passed', calls: rep.calls };
    return { kind: 'no_report', result: t };
  }
  // the program stopped by a limit while the tests waited on it: that is the reason, not the tests' view of it
  if (p.beforeTests && LIMIT_STOPS.has(p.r.status)) return { kind: 'stopped', result: p.r };
  if (rep?.op === 'fail') return { kind: 'failed', error: rep.error ?? 'a test failed' };
  if (rep?.op === 'untestable') return { kind: 'untestable', why: rep.why ?? 'the tests cannot run' };
  if (rep?.op === 'fatal') {
    const reason = (['load', 'ended', 'unsendable', 'protocol'] as const).find((k) => k === rep.kind) ?? 'protocol';
    return {
      kind: 'broke_off',
      reason,
      why: rep.why ?? 'the program broke off the tests',
      program: p.beforeTests ? p.r : null,
    };
  }
  return { kind: 'no_report', result: t };
}
