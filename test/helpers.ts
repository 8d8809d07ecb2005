/**
 * Shared test helpers: scratch files, page-cache state from the outside
 * (fincore), open descriptor counts, and a simulated slow disk.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { capabilities, evict, prepareForRead, residencySync, stats } from '../lib/index';

/** A fresh scratch directory, removed when the process exits. */
export function scratchDir(prefix = 'pagewarm-test-'): string {
  const dir = fs.mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `size` bytes of random data (written in 8 MiB pieces) and fsyncs, so eviction works. */
export function makeFile(path: string, size: number): string {
  const fd = fs.openSync(path, 'w');
  const piece = randomBytes(Math.min(size, 8 << 20));
  for (let done = 0; done < size; ) {
    const n = Math.min(piece.length, size - done);
    done += fs.writeSync(fd, piece, 0, n, done);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  return path;
}

/** A sparse file of `size` bytes with `data` written at each given offset. */
export function makeSparseFile(path: string, size: number, writes: Array<[number, Buffer]> = []): string {
  const fd = fs.openSync(path, 'w');
  fs.ftruncateSync(fd, size);
  for (const [offset, data] of writes) fs.writeSync(fd, data, 0, data.length, offset);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  return path;
}

/** Resident bytes of a file as util-linux fincore(1) reports them. */
export function fincoreBytes(path: string): number {
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES', path], { encoding: 'utf8' });
  return Number(out.trim());
}

/**
 * Whether every page of a just-warmed file (or of `[offset, offset + length)`)
 * was read in: resident now, or reclaimed since. These VMs page idle page
 * cache out in the background (DAMON, 128 MiB a second, from physical
 * regions it saw idle), which can take a folio a warm-up has just read, on a
 * loaded machine within the moment a check takes. cachestat(2) counts the
 * pages reclaim removed (they leave a shadow entry; evict(), which made the
 * range cold, leaves none), so resident + reclaimed is what the warm-up
 * read. Natively pagewarm's residencySync asks cachestat; in the fallback,
 * where pagewarm cannot tell, cachestat is asked by a python3 one-liner
 * (fincore alone where the kernel has no cachestat). Returns the verdict and
 * the counts, for the assertion's message. The ONE way tests check that a
 * warm-up made a range resident.
 */
export function warmedWhole(path: string, offset = 0, length?: number): { whole: boolean; counts: string } {
  const size = fs.statSync(path).size;
  const span = length === undefined ? Math.max(0, size - offset) : Math.min(length, Math.max(0, size - offset));
  if (!capabilities().native) {
    const r = cachestatOutside(path, offset, span);
    if (r) {
      return { whole: r.cached + r.evicted >= r.pages, counts: `${r.cached}/${r.pages} pages resident, ${r.evicted} reclaimed since (cachestat)` };
    }
    const bytes = fincoreBytes(path);
    // fincore counts whole pages: every page is resident when they cover the size.
    return { whole: offset === 0 && span === size && bytes >= size, counts: `${bytes} bytes resident (fincore)` };
  }
  const fd = fs.openSync(path, 'r');
  try {
    const r = residencySync(fd, offset, span);
    const reclaimed = r.evictedPages ?? 0;
    return { whole: r.residentPages! + reclaimed >= r.pages, counts: `${r.residentPages}/${r.pages} pages resident, ${reclaimed} reclaimed since` };
  } finally {
    fs.closeSync(fd);
  }
}

/** cachestat(2) of a byte range, asked without pagewarm (python3, ctypes); null where the kernel has none. */
function cachestatOutside(path: string, offset: number, length: number): { pages: number; cached: number; evicted: number } | null {
  const py = String.raw`
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
path, off, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
P = os.sysconf('SC_PAGESIZE')
rng = (ctypes.c_uint64 * 2)(off, length)
cs = (ctypes.c_uint64 * 5)()
fd = os.open(path, os.O_RDONLY)
r = libc.syscall(451, fd, rng, cs, 0)
os.close(fd)
pages = 0 if length == 0 else (off + length + P - 1) // P - off // P
print(json.dumps(None if r != 0 else {'pages': pages, 'cached': cs[0], 'evicted': cs[3]}))
`;
  if (length === 0) return { pages: 0, cached: 0, evicted: 0 };
  return JSON.parse(execFileSync('python3', ['-c', py, path, String(offset), String(length)], { encoding: 'utf8' })) as {
    pages: number;
    cached: number;
    evicted: number;
  } | null;
}

/** Open descriptors of this process. */
export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

let starters = 0;

/**
 * Starts pagewarm's threads and the /dev/null they warm into, before a test
 * counts descriptors: the first warm-up that reads from disk opens /dev/null
 * on a pool thread. A resident file settles on the JS thread and starts
 * nothing, so the starter is a fresh file made cold, warmed again until a
 * warm-up did read it: an evict can miss a page still in a per-CPU LRU
 * batch. (Seen twice: a starter that was resident let /dev/null open during
 * the test and count as a leak, or take the number a test had just closed.)
 * Returns whether a warm-up read from disk; always true on the fallback,
 * which has no /dev/null to open.
 */
export async function startPagewarm(dir: string): Promise<boolean> {
  const path = makeFile(join(dir, `starter-${starters++}`), 4096);
  const fd = fs.openSync(path, 'r');
  try {
    if (!capabilities().native) {
      await prepareForRead(fd);
      return true;
    }
    const chunks = stats().sendfileChunks;
    for (let i = 0; i < 5 && stats().sendfileChunks === chunks; i++) {
      evict(fd);
      await prepareForRead(fd);
    }
    return stats().sendfileChunks > chunks;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path);
  }
}

/**
 * The descriptors in `after` that were not in `before` (number and target):
 * what a leak check asserts empty. One gone is not a leak: Node itself may
 * close its own (Node 22's libuv drops an io_uring instance it stops using),
 * and a new descriptor given a freed number differs by its target.
 */
export function fdsAdded(before: string[], after: string[]): string[] {
  return after.filter((x) => !before.includes(x));
}

/** The descriptors in `after` that are not in `before`, and the ones gone. */
export function fdChanges(before: string[], after: string[]): string {
  const added = after.filter((x) => !before.includes(x));
  const gone = before.filter((x) => !after.includes(x));
  return `opened: ${added.join(', ') || 'none'}; closed: ${gone.join(', ') || 'none'}`;
}

/** A simulated slow disk for this whole process (all threads), where cgroup v1 blkio allows it. */
export interface SlowDisk {
  /** How the test ran, for t.comment(). */
  mode: string;
  throttled: boolean;
  restore(): void;
}

const BLKIO = '/sys/fs/cgroup/blkio';

function deviceOf(path: string): string {
  const st = fs.statSync(path);
  // Linux dev_t: major in bits 8-19 (and 32+), minor in 0-7 and 20-31.
  const dev = BigInt(st.dev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return `${major}:${minor}`;
}

/** Thread ids of this process whose name starts with `prefix` (pagewarm's threads are pagewarm-N). */
export function threadIds(prefix: string): number[] {
  return fs
    .readdirSync('/proc/self/task')
    .filter((tid) => {
      // A thread that exits between the listing and the read leaves no comm.
      try {
        return fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith(prefix);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return false;
        throw err;
      }
    })
    .map(Number);
}

/**
 * Puts this process (or, with `only`, just those threads) into a blkio
 * cgroup that reads the disk holding `path` at `bytesPerSecond`. Falls back
 * to "unthrottled" where that is impossible.
 *
 * Throttling only pagewarm's threads keeps the main thread's own page faults
 * (these VMs page idle code out in the background) out of the throttle.
 */
export function slowDisk(path: string, bytesPerSecond: number, only?: number[]): SlowDisk {
  const unthrottled = (why: string): SlowDisk => ({ mode: `unthrottled (${why})`, throttled: false, restore() {} });
  if (!fs.existsSync(join(BLKIO, 'blkio.throttle.read_bps_device'))) return unthrottled('no cgroup v1 blkio');
  const group = join(BLKIO, `pagewarm-test-${process.pid}`);
  try {
    fs.mkdirSync(group, { recursive: true });
    const candidates = [deviceOf(path)];
    try {
      // A partition's parent disk, where the throttle may have to go instead.
      const parent = fs.realpathSync(`/sys/dev/block/${candidates[0]}/..`);
      const devFile = join(parent, 'dev');
      if (fs.existsSync(devFile)) candidates.push(fs.readFileSync(devFile, 'utf8').trim());
    } catch {
      /* no parent disk */
    }
    let device: string | undefined;
    for (const d of candidates) {
      try {
        fs.writeFileSync(join(group, 'blkio.throttle.read_bps_device'), `${d} ${bytesPerSecond}`);
        device = d;
        break;
      } catch {
        /* try the next */
      }
    }
    if (!device) {
      fs.rmdirSync(group);
      return unthrottled('the throttle file refused the device');
    }
    if (only) for (const tid of only) fs.writeFileSync(join(group, 'tasks'), String(tid));
    else fs.writeFileSync(join(group, 'cgroup.procs'), String(process.pid));
    let restored = false;
    const restore = (): void => {
      if (restored) return;
      restored = true;
      try {
        if (only) for (const tid of only) fs.writeFileSync(join(BLKIO, 'tasks'), String(tid));
        else fs.writeFileSync(join(BLKIO, 'cgroup.procs'), String(process.pid));
        fs.rmdirSync(group);
      } catch {
        /* best effort at exit */
      }
    };
    process.on('exit', restore);
    const who = only ? `${only.length} threads` : 'the whole process';
    return { mode: `throttled to ${bytesPerSecond >= 1e6 ? `${(bytesPerSecond / 1e6).toFixed(0)} MB/s` : `${(bytesPerSecond / 1e3).toFixed(0)} KB/s`} on ${device} for ${who} (cgroup v1 blkio)`, throttled: true, restore };
  } catch (err) {
    try {
      fs.rmdirSync(group);
    } catch {
      /* not created */
    }
    return unthrottled((err as Error).message);
  }
}

/**
 * Drops a file's clean pages from the page cache without pagewarm: coreutils
 * `dd iflag=nocache count=0` calls posix_fadvise(fd, 0, 0, DONTNEED) on the
 * file (given by path, or an open descriptor handed to dd as its stdin).
 * Unchecked: for releasing memory after a test. A test that needs a cold
 * range uses {@link makeCold}, which checks.
 */
export function dropCache(file: string | number): void {
  if (typeof file === 'number') execFileSync('dd', ['iflag=nocache', 'count=0', 'status=none'], { stdio: [file, 'ignore', 'inherit'] });
  else execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Resident pages of one byte range, as mincore(2) reports them. */
export interface RangeResidency {
  pages: number;
  resident: number;
}

/**
 * An outside judge of page-cache residency for byte ranges, independent of
 * pagewarm (which cannot judge itself in the fallback, where its residency is
 * 'unknown'): what util-linux fincore does for a whole file (mmap the file,
 * mincore(2), count resident pages), done for ranges by one long-lived
 * python3 process, so that thousands of checks cost a pipe round trip each.
 * Answers are exact for the caller's view: tests run as root, and the kernel
 * answers mincore truthfully for files the caller could write.
 */
export interface CacheJudge {
  /** Per range [offset, length]: pages it touches and how many are resident. */
  ranges(path: string, ranges: Array<[number, number]>): Promise<RangeResidency[]>;
  /** True when every page of [offset, offset + length) is resident (an empty range is). */
  resident(path: string, offset: number, length: number): Promise<boolean>;
  /**
   * Drops the whole file's clean pages (posix_fadvise DONTNEED), as {@link dropCache} does, without a
   * process start; with `range` ([offset, length], length 0 meaning to the end) only that range's.
   */
  drop(path: string, range?: [number, number]): Promise<void>;
  /** Ends the judge process. */
  close(): void;
}

/**
 * The judge's python3 program: reads requests `{ path, ranges: [[offset, length], ...], drop? }`
 * (drop: true for the whole file, or [offset, length] for posix_fadvise DONTNEED of that range, first),
 * one JSON line each, and answers each with one line, `[[pages, resident], ...]` or `{ error }`.
 * Exported for child-process scripts: `python3 -c CACHE_JUDGE_PY` with the requests on stdin.
 */
export const CACHE_JUDGE_PY = String.raw`
import ctypes, json, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
P = mmap.PAGESIZE
FAILED = ctypes.c_void_p(-1).value
def check(fd, off, length):
    if length <= 0:
        return [0, 0]
    start = off - off % P
    span = off + length - start
    pages = (span + P - 1) // P
    addr = libc.mmap(None, span, mmap.PROT_READ, mmap.MAP_SHARED, fd, start)
    if addr in (None, FAILED):
        raise OSError(ctypes.get_errno(), 'mmap')
    try:
        vec = (ctypes.c_ubyte * pages)()
        if libc.mincore(addr, span, vec) != 0:
            raise OSError(ctypes.get_errno(), 'mincore')
        return [pages, pages - bytes(vec).count(0)]
    finally:
        libc.munmap(addr, span)
for line in sys.stdin:
    req = json.loads(line)
    try:
        fd = os.open(req['path'], os.O_RDONLY)
        try:
            drop = req.get('drop')
            if drop:
                off, length = (0, 0) if drop is True else drop
                os.posix_fadvise(fd, off, length, os.POSIX_FADV_DONTNEED)
            out = [check(fd, o, l) for o, l in req['ranges']]
        finally:
            os.close(fd)
    except OSError as e:
        out = {'error': str(e)}
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()
`;

/** A path naming what descriptor `fd` of this process has open (the same inode, even if renamed over or unlinked). */
export function fdPath(fd: number): string {
  return `/proc/${process.pid}/fd/${fd}`;
}

/** Starts a {@link CacheJudge} (one python3 process; it exits with this process at the latest). */
export function cacheJudge(): CacheJudge {
  const child = spawn('python3', ['-c', CACHE_JUDGE_PY], { stdio: ['pipe', 'pipe', 'inherit'] });
  // Referenced only while an answer is awaited: an idle judge never keeps the test process alive.
  const handles = [child, child.stdout, child.stdin] as unknown as Array<{ ref(): void; unref(): void }>;
  const hold = (on: boolean): void => handles.forEach((h) => (on ? h.ref() : h.unref()));
  hold(false);
  const waiting: Array<{ resolve(v: RangeResidency[]): void; reject(e: Error): void }> = [];
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buffered += d;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const answer = JSON.parse(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      const w = waiting.shift()!;
      if (waiting.length === 0) hold(false);
      if (Array.isArray(answer)) w.resolve(answer.map(([pages, resident]: number[]) => ({ pages: pages!, resident: resident! })));
      else w.reject(new Error(`cache judge: ${answer.error}`));
    }
  });
  child.on('exit', (code, signal) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`cache judge exited (${code ?? signal})`));
  });
  child.on('error', (err) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`cache judge (python3): ${err.message}`));
  });
  const ask = (path: string, rs: Array<[number, number]>, drop: boolean | [number, number] = false): Promise<RangeResidency[]> =>
    new Promise((resolve, reject) => {
      if (waiting.length === 0) hold(true);
      waiting.push({ resolve, reject });
      child.stdin.write(JSON.stringify({ path, ranges: rs, drop }) + '\n');
    });
  const ranges = (path: string, rs: Array<[number, number]>): Promise<RangeResidency[]> => ask(path, rs);
  return {
    ranges,
    resident: async (path, offset, length) => {
      const [r] = await ranges(path, [[offset, length]]);
      return r!.resident === r!.pages;
    },
    drop: async (path, range) => {
      await ask(path, [], range ?? true);
    },
    close: () => {
      child.stdin.end();
      child.kill();
    },
  };
}

/** Open descriptors of this process and what they name (`N -> target`), sorted; the listing's own left out. */
export function fdList(): string[] {
  return fs
    .readdirSync('/proc/self/fd')
    .map((n) => {
      try {
        return `${n} -> ${fs.readlinkSync(`/proc/self/fd/${n}`)}`;
      } catch {
        return '';
      }
    })
    .filter(Boolean)
    .sort();
}

/**
 * fdList() once nothing is moving: pagewarm's pool idle and the same list
 * read twice 20 ms apart (at most 1 s). For a baseline taken just after
 * work: a descriptor that work (or Node) is still closing would otherwise
 * be counted as part of the baseline and then missed by the final count
 * (seen once in CI under Node 22: a baseline of 33, 32 at the end).
 */
export async function settledFdList(): Promise<string[]> {
  let list = fdList();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const st = stats();
    const next = fdList();
    const same = next.length === list.length && next.every((x, k) => x === list[k]);
    list = next;
    if (same && st.queued + st.active + st.waiting === 0) break;
  }
  return list;
}

/** The hard RLIMIT_NOFILE of this process (Infinity when unlimited). */
export function nofileHardLimit(): number {
  const m = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m![1] === 'unlimited' ? Infinity : Number(m![1]);
}

/** util-linux prlimit(1) is installed (to run a child with other limits). */
export const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

/** The subset of tap's Test that {@link makeCold} uses. */
interface PreconditionTest {
  fail(message: string): void;
  comment(...args: unknown[]): void;
}

/**
 * Makes `[offset, offset + length)` of a file cold (no page of it in the
 * page cache), for tests whose assertions need a cold range: the ONE way
 * tests get one. `file` is a path or a descriptor of this process; `length`
 * undefined means to the end of the file.
 *
 * Evicts with posix_fadvise DONTNEED (pagewarm's evict() natively; in the
 * fallback, where evict() is a no-op, the mincore judge's own posix_fadvise),
 * then checks with the judge the tests trust (residencySync: cachestat or
 * mincore natively; the python mincore judge in the fallback, where
 * pagewarm's residency is 'unknown'), and retries with a short backoff: a
 * DONTNEED can miss a page still in a per-CPU LRU batch, or one another
 * process (or a socket buffer) holds for a moment. If the kernel keeps the
 * pages through every try, the test fails with a message starting
 * "precondition:", never with a product assertion, and false is returned:
 * the caller skips what depended on it. Evicting a range drops only the
 * page-cache folios lying wholly inside it: use ranges aligned to 2 MiB, or
 * the whole file, where large folios may be in use.
 *
 * `judge`: a long-lived {@link cacheJudge} the test already started (before
 * it counted descriptors), used instead of one judge process per check
 * (tests with hundreds of cold starts).
 */
export async function makeCold(
  t: PreconditionTest,
  file: string | number,
  offset = 0,
  length?: number,
  judge?: CacheJudge,
): Promise<boolean> {
  const native = capabilities().native;
  const path = typeof file === 'number' ? fdPath(file) : file;
  const fd = typeof file === 'number' ? file : fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  const span = length === undefined ? Math.max(0, size - offset) : Math.min(length, Math.max(0, size - offset));
  let resident = -1;
  try {
    for (let attempt = 0, backoff = 5; attempt < 8; attempt++, backoff *= 2) {
      if (native) {
        evict(fd, offset, length);
        // null: the kernel does not tell this user (not the file's owner): ask the outside judge.
        resident = residencySync(fd, offset, span).residentPages ?? (await judgeOnce(judge, path, offset, span, false));
      } else {
        // The fallback's evict() is a no-op: the judge's own posix_fadvise, then its count.
        resident = await judgeOnce(judge, path, offset, span, [offset, length ?? 0]);
      }
      if (resident === 0) return true;
      await new Promise((r) => setTimeout(r, backoff));
    }
  } finally {
    if (typeof file !== 'number') fs.closeSync(fd);
  }
  t.fail(
    `precondition: the kernel kept ${resident} page(s) of [${offset}, +${span}) of ${typeof file === 'number' ? `fd ${file}` : file} ` +
      'in the page cache through 8 evictions (not a pagewarm failure: the test needs a cold range)',
  );
  return false;
}

/**
 * Resident pages of one range by the mincore judge, run once as its own
 * process (after a DONTNEED of `drop`, if given). A process per call, not a
 * long-lived judge: tests count this process's descriptors, and a judge's
 * pipes started here would count.
 */
async function judgeOnce(judge: CacheJudge | undefined, path: string, offset: number, length: number, drop: false | [number, number]): Promise<number> {
  if (judge) {
    if (drop) await judge.drop(path, drop);
    return (await judge.ranges(path, [[offset, length]]))[0]!.resident;
  }
  const out = execFileSync('python3', ['-c', CACHE_JUDGE_PY], {
    input: JSON.stringify({ path, ranges: [[offset, length]], drop }) + '\n',
    encoding: 'utf8',
  });
  const answer = JSON.parse(out) as number[][] | { error: string };
  if (!Array.isArray(answer)) throw new Error(`cache judge: ${answer.error}`);
  return answer[0]![1]!;
}
