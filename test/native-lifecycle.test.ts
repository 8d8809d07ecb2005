// The life of pagewarm's native threads, under real limits (issue #13):
// - a failed /dev/null open (EMFILE) is not remembered: once descriptors are
//   free again, the next warm-up works;
// - a failed thread start (EAGAIN under a cgroup pids limit) is an error
//   with its syscall, never std::terminate, and later calls work once the
//   limit is lifted;
// - shrinking the pool while jobs run never strands a job: the jobs
//   complete and the process exits on its own, with no further submit;
// - no JS thread waits for a pool thread stuck in a slow read (a cgroup v1
//   blkio throttle of a few KiB/s on a cold file): process exit,
//   worker.terminate() and configure({ threads }) return promptly, and the
//   stuck job's descriptor is closed once its read returns;
// - stats().threads counts the threads running, configuredThreads the target.
//
// Anything that could crash or hang runs in a child process with a timeout;
// its stderr is in the assertion's message. The children load the compiled
// package (npm run build:ts). Native only: the fallback has no threads of
// its own (its reads run on the libuv pool).
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { capabilities } from '../lib/index';
import { scratchDir, makeFile, hasPrlimit, makeCold } from './helpers';

const KiB = 1024;
const MiB = 1 << 20;
const dir = scratchDir();
const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
const caps = capabilities();

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/** Runs `node -e script ...args` (optionally behind a command such as prlimit), killed after timeoutMs. */
function runChild(script: string, args: string[], timeoutMs: number, prefix: string[] = []): Promise<ChildResult> {
  return new Promise((resolve) => {
    const argv = [...prefix, process.execPath, '-e', script, ...args];
    const start = Date.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - start, timedOut });
    });
  });
}

/** The child's status and stderr, for assertion messages. */
function describe(r: ChildResult): string {
  const how = r.timedOut ? `killed after ${r.ms} ms (timeout)` : `exit ${r.code ?? r.signal} after ${r.ms} ms`;
  return `${how}; stdout: ${r.stdout.trim().slice(-2000) || '(none)'}; stderr: ${r.stderr.trim().slice(-2000) || '(none)'}`;
}

/** The last line of the child's stdout that parses as JSON, or undefined. */
function lastJson(r: ChildResult): Record<string, unknown> | undefined {
  const lines = r.stdout.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      /* not the result line */
    }
  }
  return undefined;
}


/** Skips the rest of a test where its conditions cannot be made here, with the reason. */
function skipWith(t: Test, why: string): void {
  t.plan(0, why);
}

// ---------------------------------------------------------------------------
// cgroup v1 helpers (we run as root; each test makes and removes its own group)

const PIDS = '/sys/fs/cgroup/pids';
const BLKIO = '/sys/fs/cgroup/blkio';
let groups = 0;

/** A new cgroup under a v1 hierarchy, removed at exit (retried: a group whose last task just died can be busy briefly). */
function makeGroup(root: string): string {
  const group = join(root, `pagewarm-lifecycle-${process.pid}-${groups++}`);
  fs.mkdirSync(group);
  process.on('exit', () => removeGroupNow(group));
  return group;
}

function removeGroupNow(group: string): boolean {
  try {
    fs.rmdirSync(group);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

async function removeGroup(group: string): Promise<void> {
  for (let i = 0; i < 100 && !removeGroupNow(group); i++) await new Promise((r) => setTimeout(r, 50));
}

/** "major:minor" of the device holding path, and of its parent disk if it is a partition. */
function deviceCandidates(path: string): string[] {
  const dev = BigInt(fs.statSync(path).dev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  const out = [`${major}:${minor}`];
  try {
    const devFile = join(fs.realpathSync(`/sys/dev/block/${out[0]}/..`), 'dev');
    if (fs.existsSync(devFile)) out.push(fs.readFileSync(devFile, 'utf8').trim());
  } catch {
    /* not a partition */
  }
  return out;
}

/**
 * A blkio group whose reads of path's device go at bytesPerSecond: the
 * child moves its own pagewarm-N threads into it (tasks). Returns the group
 * and the throttle line's device, or why that is impossible here.
 */
function throttledGroup(path: string, bytesPerSecond: number): { group: string; device: string } | string {
  if (!fs.existsSync(join(BLKIO, 'blkio.throttle.read_bps_device'))) return 'no cgroup v1 blkio hierarchy';
  let group: string;
  try {
    group = makeGroup(BLKIO);
  } catch (err) {
    return `cannot make a blkio cgroup: ${(err as Error).message}`;
  }
  for (const device of deviceCandidates(path)) {
    try {
      fs.writeFileSync(join(group, 'blkio.throttle.read_bps_device'), `${device} ${bytesPerSecond}`);
      return { group, device };
    } catch {
      /* try the parent disk */
    }
  }
  removeGroupNow(group);
  return `the blkio throttle refused the device of ${path}`;
}

// Child-side code shared by the scripts below (plain JS, run with node -e).
const CHILD_PRELUDE = String.raw`
const fs = require('fs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (what, cond, ms = 20000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(10);
  }
};
const pagewarmTids = () => fs.readdirSync('/proc/self/task')
  .filter((tid) => { try { return fs.readFileSync('/proc/self/task/' + tid + '/comm', 'utf8').startsWith('pagewarm-'); } catch { return false; } });
const fail = (err) => ({ code: err.code, errno: err.errno, syscall: err.syscall, message: err.message });
`;

// ---------------------------------------------------------------------------

t.test('native threads', { skip: caps.native ? false : 'the fallback has no native threads (its reads run on the libuv pool)' }, async (t) => {
  t.ok(fs.existsSync(dist), 'the compiled package exists (npm run build:ts)');

  t.test('a failed /dev/null open (EMFILE) is not remembered: the next warm-up works', async (t) => {
    if (!hasPrlimit) return skipWith(t, 'util-linux prlimit is not installed (needed to run the child at a low RLIMIT_NOFILE)');
    const file = makeFile(join(dir, 'emfile'), 256 * KiB);
    if (!(await makeCold(t, file))) return;
    // The child starts the pool with a residency query (it opens no
    // /dev/null), fills its descriptor table, frees one descriptor (the
    // warm-up's own duplicate of fd takes it), so the first warm-up can
    // only fail at the pool thread's /dev/null open. Then it frees them all.
    const script = CHILD_PRELUDE + String.raw`
      const pw = require(process.argv[1]);
      (async () => {
        const fd = fs.openSync(process.argv[2], 'r');
        await pw.residency(fd);
        const held = [];
        try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch (err) { if (err.code !== 'EMFILE') throw err; }
        fs.closeSync(held.pop());
        let first;
        try { first = await pw.prepareForRead(fd); } catch (err) { first = fail(err); }
        for (const h of held) fs.closeSync(h);
        pw.evict(fd);
        let second;
        try { second = await pw.prepareForRead(fd); } catch (err) { second = fail(err); }
        console.log(JSON.stringify({ held: held.length + 1, first, second }));
      })().catch((err) => { console.error(err); process.exit(3); });
    `;
    const r = await runChild(script, [dist, file], 60_000, ['prlimit', '--nofile=256:256', '--']);
    t.equal(r.code, 0, `the child ran to the end: ${describe(r)}`);
    const out = lastJson(r);
    t.ok(out, `the child reported: ${describe(r)}`);
    if (!out) return;
    t.match(out.first, { code: 'EMFILE', syscall: 'open' }, 'precondition and first outcome: the warm-up failed opening /dev/null with EMFILE');
    t.equal(out.second, 256 * KiB, 'with descriptors free again, the next warm-up warms the whole file');
  });

  t.test('a failed thread start is EAGAIN (pthread_create), never an abort; calls work once the limit is lifted', async (t) => {
    let group: string;
    try {
      if (!fs.existsSync(join(PIDS, 'cgroup.procs'))) return skipWith(t, 'no cgroup v1 pids hierarchy');
      group = makeGroup(PIDS);
      if (!fs.existsSync(join(group, 'pids.max'))) return skipWith(t, 'the pids cgroup has no pids.max');
    } catch (err) {
      return skipWith(t, `cannot make a pids cgroup: ${(err as Error).message}`);
    }
    const file = makeFile(join(dir, 'pids'), 1 * MiB);
    // The child moves itself into the group and leaves room for exactly one
    // more thread: the poller starts, the first pool thread cannot.
    const script = CHILD_PRELUDE + String.raw`
      const pw = require(process.argv[1]);
      const group = process.argv[2];
      (async () => {
        const fd = fs.openSync(process.argv[3], 'r');
        fs.writeFileSync(group + '/cgroup.procs', String(process.pid));
        const current = Number(fs.readFileSync(group + '/pids.current', 'utf8'));
        fs.writeFileSync(group + '/pids.max', String(current + 1));
        const limited = [];
        for (let i = 0; i < 3; i++) {
          try { await pw.residency(fd); limited.push('resolved'); } catch (err) { limited.push(fail(err)); }
        }
        const whileLimited = { threads: pw.stats().threads, configuredThreads: pw.stats().configuredThreads };
        fs.writeFileSync(group + '/pids.max', 'max');
        const after = (await pw.residency(fd)).pages;
        pw.evict(fd);
        const warmed = await pw.prepareForRead(fd);
        const threads = pw.stats().threads;
        fs.writeFileSync('${PIDS}/cgroup.procs', String(process.pid));
        console.log(JSON.stringify({ limited, whileLimited, after, warmed, threads, configuredThreads: pw.stats().configuredThreads }));
      })().catch((err) => { console.error(err); process.exit(3); });
    `;
    const r = await runChild(script, [dist, group, file], 60_000);
    await removeGroup(group);
    t.equal(r.signal, null, `no signal (std::terminate would be SIGABRT): ${describe(r)}`);
    t.equal(r.code, 0, `the child ran to the end: ${describe(r)}`);
    const out = lastJson(r);
    t.ok(out, `the child reported: ${describe(r)}`);
    if (!out) return;
    const eagain = { code: 'EAGAIN', syscall: 'pthread_create', message: /^EAGAIN: .*, pthread_create$/ };
    t.match(out.limited, [eagain, eagain, eagain], 'each call under the limit rejects with EAGAIN from pthread_create');
    t.match(out.whileLimited, { threads: 0 }, 'no pool thread runs under the limit');
    t.equal(out.after, 256, 'with the limit lifted, a residency query works');
    t.equal(out.warmed, 1 * MiB, 'and a warm-up');
    t.equal(out.threads, out.configuredThreads, 'and the pool has all its threads');
  });

  t.test('stats().threads counts the threads running; configuredThreads is the target', async (t) => {
    const file = makeFile(join(dir, 'stats'), 64 * KiB);
    const script = CHILD_PRELUDE + String.raw`
      const pw = require(process.argv[1]);
      const pick = () => ({ threads: pw.stats().threads, configuredThreads: pw.stats().configuredThreads, tids: pagewarmTids().length });
      (async () => {
        const fd = fs.openSync(process.argv[2], 'r');
        const before = pick();
        pw.configure({ threads: 3 });
        const configured = pick();
        await pw.residency(fd);
        const started = pick();
        console.log(JSON.stringify({ before, configured, started }));
      })().catch((err) => { console.error(err); process.exit(3); });
    `;
    const r = await runChild(script, [dist, file], 30_000);
    t.equal(r.code, 0, `the child ran to the end: ${describe(r)}`);
    const byDefault = Math.min(4, Math.max(2, availableParallelism()));
    t.same(lastJson(r), {
      before: { threads: 0, configuredThreads: byDefault, tids: 0 },
      configured: { threads: 0, configuredThreads: 3, tids: 0 },
      started: { threads: 3, configuredThreads: 3, tids: 4 },
    }, 'no thread before the first job; then 3 pagewarm-N (and the poller), as configured');
  });

  t.test('shrinking the pool while jobs run: they complete and the process exits on its own', async (t) => {
    const file = makeFile(join(dir, 'shrink'), 32 * MiB);
    // Each round, on 4 threads with 4 KiB slices: a 4 MiB job, then a 32 MiB
    // one. A job stays on the thread that took it (it requeues itself and
    // takes itself back), so the first usually runs on pagewarm-0 and the
    // second on another thread. When the first is done, pagewarm-0 is idle
    // and the pool shrinks to 1: the second's thread is retired, requeues
    // its job and exits; pagewarm-0 must be woken for it. No submit follows
    // the last round: a stranded job would keep the process alive.
    const script = CHILD_PRELUDE + String.raw`
      const pw = require(process.argv[1]);
      (async () => {
        const fd = fs.openSync(process.argv[2], 'r');
        pw.configure({ chunkSize: 4096 });
        const rounds = [];
        for (let i = 0; i < 8; i++) {
          pw.configure({ threads: 4 });
          const small = pw.prepareForRead(fd, 0, 4 << 20);
          const large = pw.prepareForRead(fd);
          const first = await small;
          pw.configure({ threads: 1 });
          rounds.push([first, await large]);
          console.log('round ' + i + ' done');
        }
        fs.closeSync(fd);
        console.log(JSON.stringify({ rounds }));
      })().catch((err) => { console.error(err); process.exit(3); });
    `;
    const r = await runChild(script, [dist, file], 30_000);
    t.notOk(r.timedOut, `the process exited on its own: ${describe(r)}`);
    t.equal(r.code, 0, `the child ran to the end: ${describe(r)}`);
    t.same(lastJson(r), { rounds: Array(8).fill([4 * MiB, 32 * MiB]) }, 'every job warmed its whole range');
  });

  t.test('no JS thread waits for a pool thread stuck in a slow read', async (t) => {
    const file = makeFile(join(dir, 'slow'), 64 * MiB);
    const bound = 10_000; // what would otherwise take minutes at 4 KiB/s
    const probe = throttledGroup(file, 4 * KiB);
    if (typeof probe === 'string') return skipWith(t, probe);
    await removeGroup(probe.group);

    // Starts pagewarm's threads (a residency query reads nothing), throttles
    // them, starts `jobs` warm-ups of the cold file, and waits until all are
    // inside a slice (stats().active).
    const ARGS = String.raw`
      const args = require('worker_threads').isMainThread ? process.argv.slice(1) : process.argv.slice(2);
      const [dist, group, file, device] = args;
      const lift = () => fs.writeFileSync(group + '/blkio.throttle.read_bps_device', device + ' 0');
      const fdsOn = (path) => fs.readdirSync('/proc/self/fd').filter((n) => { try { return fs.readlinkSync('/proc/self/fd/' + n) === path; } catch { return false; } });
    `;
    const STUCK = String.raw`
      const pw = require(dist);
      async function startStuck(jobs) {
        pw.configure({ threads: jobs });
        const fd = fs.openSync(file, 'r');
        await pw.residency(fd);
        for (const tid of pagewarmTids()) fs.writeFileSync(group + '/tasks', tid);
        const half = 32 * 1048576;
        const promises = [];
        for (let i = 0; i < jobs; i++) promises.push(pw.prepareForRead(fd, i * half, half));
        fs.closeSync(fd); // the jobs hold their own duplicates
        await until(jobs + ' jobs inside a slice', () => pw.stats().active === jobs);
        await sleep(300); // well inside the throttled read
        const check = fs.openSync(file, 'r');
        const resident = pw.residencySync(check).residentPages * 4096;
        fs.closeSync(check);
        if (resident >= 1048576) throw new Error('precondition: the throttle does not hold the reads (' + resident + ' bytes resident after 300 ms)');
        return promises;
      }
    `;

    const run = async (t: Test, name: string, script: string, loadInMain = true): Promise<Record<string, unknown> | undefined> => {
      if (!(await makeCold(t, file))) return undefined;
      const g = throttledGroup(file, 4 * KiB);
      if (typeof g === 'string') {
        t.fail(`precondition: ${g}`);
        return undefined;
      }
      t.comment(`${name}: reads of ${g.device} throttled to 4 KiB/s for pagewarm's threads (cgroup v1 blkio)`);
      const r = await runChild(CHILD_PRELUDE + ARGS + (loadInMain ? STUCK : '') + script, [dist, g.group, file, g.device], 30_000);
      // Reads the child left queued in the throttle would hold their pages
      // locked for minutes (and the next case's file warm): let them go.
      fs.writeFileSync(join(g.group, 'blkio.throttle.read_bps_device'), `${g.device} 0`);
      await removeGroup(g.group);
      t.notOk(r.timedOut, `the child finished: ${describe(r)}`);
      t.equal(r.signal, null, `no signal: ${describe(r)}`);
      t.equal(r.code, 0, `exit code 0: ${describe(r)}`);
      t.equal(r.stderr.trim(), '', 'nothing on stderr');
      const out = lastJson(r);
      t.ok(out, `the child reported: ${describe(r)}`);
      return out;
    };

    t.test('process.exit() with the read in flight', async (t) => {
      const out = await run(t, 'exit', String.raw`
        (async () => {
          await startStuck(1);
          const t0 = Date.now();
          process.on('exit', () => console.log(JSON.stringify({ exitStarted: t0 })));
          process.exit(0);
        })().catch((err) => { console.error(err); process.exit(3); });
      `);
      if (!out) return;
      const took = Date.now() - (out.exitStarted as number);
      t.ok(took < bound, `the process was gone ${took} ms after process.exit() (bound ${bound} ms)`);
    });

    t.test('worker.terminate() with the read in flight', async (t) => {
      // Only the worker loads pagewarm: its teardown is the last environment's.
      const out = await run(t, 'terminate', String.raw`
        const { Worker } = require('worker_threads');
        (async () => {
          const w = new Worker(CHILD_SOURCE + "startStuck(1).then(() => require('worker_threads').parentPort.postMessage('stuck'))",
            { eval: true, argv: args });
          await new Promise((resolve, reject) => { w.on('message', resolve); w.on('error', reject); });
          const inFlight = fdsOn(file).length;
          const t0 = Date.now();
          await w.terminate();
          const terminateMs = Date.now() - t0;
          const afterTerminate = fdsOn(file).length;
          lift(); // the stuck read returns: its job is freed, with its descriptor
          const t1 = Date.now();
          while (fdsOn(file).length > 0 && Date.now() - t1 < 30000) await sleep(20);
          console.log(JSON.stringify({ inFlight, terminateMs, afterTerminate, afterLift: fdsOn(file).length }));
        })().catch((err) => { console.error(err); process.exit(3); });
      `.replace('CHILD_SOURCE', JSON.stringify(CHILD_PRELUDE + ARGS + STUCK)), false);
      if (!out) return;
      t.equal(out.inFlight, 1, 'precondition: the job holds its own descriptor of the file');
      t.ok((out.terminateMs as number) < bound, `terminate() resolved in ${out.terminateMs} ms (bound ${bound} ms)`);
      t.equal(out.afterLift, 0, `once the read returned, the job's descriptor was closed (${out.afterTerminate} still open right after terminate)`);
    });

    t.test('configure({ threads }) down with the reads in flight', async (t) => {
      const out = await run(t, 'configure', String.raw`
        (async () => {
          const jobs = await startStuck(2);
          const t0 = Date.now();
          pw.configure({ threads: 1 });
          const configureMs = Date.now() - t0;
          const during = { threads: pw.stats().threads, configuredThreads: pw.stats().configuredThreads };
          lift();
          const warmed = await Promise.all(jobs);
          await until('the retired thread to exit', () => pw.stats().threads === 1);
          console.log(JSON.stringify({ configureMs, during, warmed, threads: pw.stats().threads, pool: pagewarmTids().length }));
        })().catch((err) => { console.error(err); process.exit(3); });
      `);
      if (!out) return;
      t.ok((out.configureMs as number) < bound, `configure() returned in ${out.configureMs} ms (bound ${bound} ms)`);
      t.same(out.during, { threads: 2, configuredThreads: 1 }, 'stats(): both threads still run (one retired, inside its read); the target is 1');
      t.same(out.warmed, [32 * MiB, 32 * MiB], 'both jobs complete (the retired thread\'s on the thread that stays)');
      t.equal(out.threads, 1, 'then the retired thread exits');
      t.equal(out.pool, 2, 'pagewarm-0 and the poller are left');
    });
  });
});
