/**
 * A sandbox for untrusted model code: one short-lived process per run, contained by bubblewrap (`bwrap`) and rlimits.
 *
 *   - separate process in its own PID, network, IPC and UTS namespaces (no network at all: not even the host's
 *     loopback; killing the sandbox kills every process it started, fork bombs included);
 *   - a minimal read-only root: /usr, /etc and the /bin,/lib… links of the host, plus the interpreter's own install
 *     prefix when it lives elsewhere (pyenv under /root, say); nothing else of the host (no /home, /root, /work,
 *     /var, /srv, host /tmp) is visible; the program's own files are bound read-only at /sandbox;
 *   - one writable place: a size-limited tmpfs at /tmp (the working directory), gone when the run ends;
 *   - rlimits (prlimit): CPU seconds, address space and data segment (memory), processes/threads, file size, open
 *     files, no core dumps; plus a wall-clock timeout enforced from here (SIGKILL to the whole sandbox);
 *   - the program never runs as root: as root we start bwrap privileged (no user namespace) and drop to a fresh
 *     unprivileged uid/gid with no capabilities and no_new_privs (`setpriv`) — the uid is what makes RLIMIT_NPROC
 *     bite, since the kernel does not apply it to root; as another user we run bwrap in a user namespace, where the
 *     process limit is counted per sandbox;
 *   - no user namespaces inside: the program cannot make one (where it would hold every capability over its own
 *     mounts and the kernel's less-travelled code). bwrap's `--disable-userns` needs bwrap's own user namespace, so as
 *     root a second, unprivileged bwrap (as the fresh uid, inside the first) adds just that namespace and the lock;
 *   - stdout/stderr are capped; a program that writes more is killed.
 *
 * Not contained: CPU *share* (a sandbox may use its CPU-seconds at full speed on one core: run few at once) and
 * system calls (no seccomp filter beyond what the namespaces and dropped capabilities imply).
 *
 * If bwrap is missing or cannot create namespaces here, `runSandboxed` throws `SandboxUnavailableError` — an
 * infrastructure error, never a verdict on the model's code (untrusted code is not run without containment).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';

export type SandboxLanguage = 'python' | 'javascript';

export interface SandboxLimits {
  /** Wall-clock limit for the whole run (seconds). */
  timeoutSeconds: number;
  /** CPU-time limit (seconds); defaults to the wall-clock limit. */
  cpuSeconds?: number;
  /** Memory limit (MiB): RLIMIT_DATA (and the V8 heap limit for JavaScript), RLIMIT_AS with headroom. */
  memoryMb: number;
  /** Processes + threads the program may have at once. */
  maxProcesses: number;
  /** Largest file the program may write (MiB), and the size of its /tmp. */
  maxFileMb: number;
  /** Bytes of stdout/stderr kept; a program that writes more is killed. */
  maxOutputBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  timeoutSeconds: 10,
  memoryMb: 512,
  maxProcesses: 32,
  maxFileMb: 16,
  maxOutputBytes: 1 << 20,
};

export interface SandboxRun {
  language: SandboxLanguage;
  /** Files written (read-only) under /sandbox; `main` is executed. */
  files: Record<string, string>;
  main: string;
  /** Arguments after the main file. */
  args?: string[];
  stdin?: string;
  limits?: Partial<SandboxLimits>;
  /** Extra pipes the program gets as fds 3, 4, …, in `SandboxProcess.channels` here (not counted in the output limit). */
  channels?: number;
}

export type SandboxStatus = 'ok' | 'exit' | 'timeout' | 'cpu_limit' | 'memory_limit' | 'output_limit' | 'signal';

export interface SandboxResult {
  /** ok: exit code 0; exit: non-zero exit; the others: why it was stopped. */
  status: SandboxStatus;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** A started sandbox: its extra pipes, its result when it has ended, and a way to end it. */
export interface SandboxProcess {
  channels: Duplex[];
  result: Promise<SandboxResult>;
  /** Kill the whole sandbox; `why` becomes its status unless it had already stopped for another reason. */
  stop(why?: SandboxStatus): void;
}

export class SandboxUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxUnavailableError';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Runtime discovery (once per process)
// ---------------------------------------------------------------------------------------------------------------

interface Runtime {
  exe: string;
  /** Directory to bind read-only at the same path when it is not under /usr. */
  prefix: string | null;
}

interface Host {
  bwrap: string;
  setpriv: string | null;
  prlimit: string;
  root: boolean;
  runtimes: Partial<Record<SandboxLanguage, Runtime>>;
  problems: string[];
}

let host: Host | null = null;

function which(cmd: string): string | null {
  for (const dir of [
    '/usr/bin',
    '/bin',
    '/usr/sbin',
    '/sbin',
    '/usr/local/bin',
    ...(process.env.PATH ?? '').split(':'),
  ]) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function prefixOf(exe: string, prefix: string): string | null {
  const real = fs.realpathSync(prefix);
  return real === '/usr' || real.startsWith('/usr/') ? null : real;
}

function discoverPython(): Runtime | string {
  const py = process.env.DISTILLERY_SANDBOX_PYTHON ?? 'python3';
  const r = spawnSync(py, ['-c', 'import sys; print(sys.executable); print(sys.base_prefix)'], {
    encoding: 'utf8',
    timeout: 20000,
  });
  if (r.status !== 0) return `python: ${py} did not run (${r.error?.message ?? r.stderr.trim()})`;
  const [exe, base] = r.stdout.trim().split('\n');
  const real = fs.realpathSync(exe);
  // a venv's python is a link to the base interpreter: run the base one (stdlib only, no site-packages of the venv)
  return { exe: real, prefix: prefixOf(real, base) };
}

function discoverNode(): Runtime {
  const exe = fs.realpathSync(process.env.DISTILLERY_SANDBOX_NODE ?? process.execPath);
  return { exe, prefix: prefixOf(exe, path.dirname(path.dirname(exe))) };
}

function discover(): Host {
  if (host) return host;
  const problems: string[] = [];
  const bwrap = which('bwrap');
  const prlimit = which('prlimit');
  const setpriv = which('setpriv');
  const root = process.getuid?.() === 0;
  if (!bwrap) problems.push('bubblewrap (bwrap) is not installed: apt-get install -y bubblewrap');
  if (!prlimit) problems.push('prlimit (util-linux) is not installed');
  if (root && !setpriv) problems.push('setpriv (util-linux) is not installed (needed to drop root)');
  const runtimes: Host['runtimes'] = {};
  const py = discoverPython();
  if (typeof py === 'string') problems.push(py);
  else runtimes.python = py;
  runtimes.javascript = discoverNode();
  host = { bwrap: bwrap ?? '', setpriv, prlimit: prlimit ?? '', root, runtimes, problems };
  return host;
}

/** Is the sandbox usable here? Runs one trivial contained program (cached). */
let probed: Promise<string | null> | null = null;
export function sandboxProblem(): Promise<string | null> {
  probed ??= (async () => {
    const h = discover();
    if (!h.bwrap || !h.prlimit || (h.root && !h.setpriv)) return h.problems.join('; ');
    const lang: SandboxLanguage = h.runtimes.python ? 'python' : 'javascript';
    try {
      const r = await startContained(
        h,
        {
          language: lang,
          files: { 'probe.txt': 'ok' },
          main: 'probe.txt',
          limits: { timeoutSeconds: 20 },
        },
        ['/bin/cat', '/sandbox/probe.txt'],
      ).result;
      // as root the lock on user namespaces needs a second bwrap as an unprivileged user: the host must allow that
      const hint = h.root
        ? ' (as root, the sandbox also runs bwrap unprivileged: unprivileged user namespaces must be allowed)'
        : '';
      if (r.status !== 'ok' || r.stdout !== 'ok')
        return `bwrap does not work here: exit ${r.exitCode ?? r.signal}: ${r.stderr.trim().slice(0, 500)}${hint}`;
      return null;
    } catch (e) {
      return `bwrap does not work here: ${(e as Error).message}`;
    }
  })();
  return probed;
}

// ---------------------------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------------------------

/** The bind arguments of the minimal root: /usr and /etc read-only, /bin,/lib… as on the host (links or binds). */
function rootArgs(rt: Runtime | undefined): string[] {
  const args = ['--ro-bind', '/usr', '/usr', '--ro-bind', '/etc', '/etc'];
  for (const d of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(d);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(d), d);
    else if (st.isDirectory()) args.push('--ro-bind', d, d);
  }
  if (rt?.prefix) {
    // parents are created inside the sandbox's own root (0755), so a runtime under /root/.pyenv is reachable while
    // the rest of /root is not there at all
    const parts = rt.prefix.split('/').filter(Boolean);
    for (let k = 1; k < parts.length; k++) args.push('--perms', '0755', '--dir', '/' + parts.slice(0, k).join('/'));
    args.push('--ro-bind', rt.prefix, rt.prefix);
  }
  return args;
}

/** A uid/gid that no real account uses, different for each run (RLIMIT_NPROC counts per uid). */
function freshId(): number {
  return 200_000 + crypto.randomInt(0, 1_000_000);
}

function commandFor(h: Host, run: SandboxRun, lim: SandboxLimits): string[] {
  const rt = h.runtimes[run.language];
  if (!rt) throw new SandboxUnavailableError(`no ${run.language} runtime: ${h.problems.join('; ')}`);
  const main = `/sandbox/${run.main}`;
  const args = run.args ?? [];
  if (run.language === 'python') return [rt.exe, '-I', '-B', main, ...args];
  return [rt.exe, `--max-old-space-size=${lim.memoryMb}`, '--v8-pool-size=2', '--stack-size=4000', main, ...args];
}

function startContained(h: Host, run: SandboxRun, argv: string[]): SandboxProcess {
  const lim: SandboxLimits = { ...DEFAULT_LIMITS, ...(run.limits ?? {}) };
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-sbx-'));
  fs.chmodSync(src, 0o755);
  for (const [name, text] of Object.entries(run.files)) {
    if (name.includes('/') || name.startsWith('.')) throw new Error(`bad sandbox file name ${name}`);
    fs.writeFileSync(path.join(src, name), text, { mode: 0o644 });
  }
  const mib = 1024 * 1024;
  const cpu = Math.max(1, Math.ceil(lim.cpuSeconds ?? lim.timeoutSeconds));
  const dataBytes = lim.memoryMb * mib;
  // V8 reserves a lot of address space it never touches: JavaScript gets headroom on RLIMIT_AS, and is held to its
  // memory by RLIMIT_DATA (private writable memory) and its heap limit.
  const asBytes = (lim.memoryMb + (run.language === 'javascript' ? 4096 : 256)) * mib;
  const rlimits = [
    `--cpu=${cpu}:${cpu + 1}`, // SIGXCPU at the soft limit (reported as such), SIGKILL a second later
    `--as=${asBytes}`,
    `--data=${dataBytes}`,
    `--nproc=${lim.maxProcesses}`,
    `--fsize=${lim.maxFileMb * mib}`,
    '--nofile=64',
    '--core=0',
  ];
  const ns = h.root
    ? ['--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup-try']
    : ['--unshare-all', '--unshare-user', '--disable-userns'];
  const rt = h.runtimes[run.language];
  const args = [
    ...ns,
    '--die-with-parent',
    '--new-session',
    ...rootArgs(rt),
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--perms',
    '1777',
    '--size',
    String(lim.maxFileMb * 4 * mib),
    '--tmpfs',
    '/tmp',
    '--ro-bind',
    src,
    '/sandbox',
    '--chdir',
    '/tmp',
    '--hostname',
    'sandbox',
    '--',
  ];
  if (h.root) {
    const id = freshId();
    args.push(
      h.setpriv!,
      `--reuid=${id}`,
      `--regid=${id}`,
      '--clear-groups',
      '--no-new-privs',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--',
    );
    // the whole tree as it is (each mount keeps its read-only flag), in a user namespace of the fresh uid only
    args.push(
      h.bwrap,
      '--unshare-user',
      '--disable-userns',
      '--die-with-parent',
      '--bind',
      '/',
      '/',
      '--chdir',
      '/tmp',
      '--',
    );
  }
  args.push(h.prlimit, ...rlimits, '--', ...argv);
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    PYTHONHASHSEED: '0',
    PYTHONIOENCODING: 'utf-8',
    UV_THREADPOOL_SIZE: '2',
    OPENBLAS_NUM_THREADS: '1',
    OMP_NUM_THREADS: '1',
  };
  const started = Date.now();
  const extra = Array.from({ length: run.channels ?? 0 }, () => 'pipe' as const);
  const child = spawn(h.bwrap, args, { env, stdio: ['pipe', 'pipe', 'pipe', ...extra], detached: true });
  const channels = extra.map((_, k) => child.stdio[3 + k] as Duplex);
  for (const c of channels) c?.on('error', () => undefined); // EPIPE once the program is gone
  let stopped: SandboxStatus | null = null;
  const kill = (why: SandboxStatus) => {
    if (!stopped) stopped = why;
    try {
      process.kill(-child.pid!, 'SIGKILL'); // the whole process group: bwrap; its PID namespace dies with it
    } catch {
      /* already gone */
    }
  };
  const result = new Promise<SandboxResult>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    const timer = setTimeout(() => kill('timeout'), lim.timeoutSeconds * 1000);
    const collect = (chunks: Buffer[], which: 'out' | 'err') => (b: Buffer) => {
      const n = which === 'out' ? (outBytes += b.length) : (errBytes += b.length);
      if (n > lim.maxOutputBytes) {
        kill('output_limit');
        return;
      }
      chunks.push(b);
    };
    child.stdout.on('data', collect(out, 'out'));
    child.stderr.on('data', collect(err, 'err'));
    child.stdin.on('error', () => undefined); // EPIPE when the program does not read its input
    child.stdin.end(run.stdin ?? '');
    child.on('error', (e) => {
      clearTimeout(timer);
      fs.rmSync(src, { recursive: true, force: true });
      reject(new SandboxUnavailableError(`could not start bwrap: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      fs.rmSync(src, { recursive: true, force: true });
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      let status: SandboxStatus;
      if (stopped) status = stopped;
      else if (code === 0) status = 'ok';
      else status = classify(code, signal, stderr);
      resolve({ status, exitCode: code, signal, stdout, stderr, wallMs: Date.now() - started });
    });
  });
  return { channels, result, stop: (why: SandboxStatus = 'signal') => kill(why) };
}

const MEMORY_RE =
  /MemoryError|JavaScript heap out of memory|Array buffer allocation failed|Cannot allocate memory|std::bad_alloc|Fatal process OOM|Reached heap limit|out of memory/i;

function signalName(n: number): string | null {
  for (const [name, num] of Object.entries(os.constants.signals)) if (num === n) return name;
  return null;
}

/** bwrap exits with the program's status; a program killed by a signal shows as 128+signal. */
function classify(code: number | null, signal: NodeJS.Signals | null, stderr: string): SandboxStatus {
  const sig = signal ?? (code !== null && code > 128 ? signalName(code - 128) : null);
  if (sig === 'SIGXCPU') return 'cpu_limit';
  if (MEMORY_RE.test(stderr)) return 'memory_limit';
  if (sig === 'SIGKILL' && /CPU time limit/i.test(stderr)) return 'cpu_limit';
  if (sig) return 'signal';
  return 'exit';
}

/** Start a program in the sandbox. Throws SandboxUnavailableError when the sandbox cannot work on this host. */
export async function startSandboxed(run: SandboxRun): Promise<SandboxProcess> {
  const problem = await sandboxProblem();
  if (problem) throw new SandboxUnavailableError(problem);
  const h = discover();
  const lim: SandboxLimits = { ...DEFAULT_LIMITS, ...(run.limits ?? {}) };
  return startContained(h, run, commandFor(h, run, lim));
}

/** Run a program in the sandbox. Throws SandboxUnavailableError when the sandbox cannot work on this host. */
export async function runSandboxed(run: SandboxRun): Promise<SandboxResult> {
  return (await startSandboxed(run)).result;
}

/** A short description of how the sandbox runs here (for logs and reports). */
export function describeSandbox(): string {
  const h = discover();
  const rts = Object.entries(h.runtimes)
    .map(([k, v]) => `${k}=${v!.exe}`)
    .join(' ');
  return `bwrap=${h.bwrap || 'missing'} mode=${h.root ? 'root→setpriv fresh uid→user namespace' : 'user namespace'} nested-userns=disabled ${rts}`;
}
