/**
 * The `pagewarm` command: warm, inspect and evict the page cache of files and
 * directory trees, vmtouch-style, through pagewarm's own API.
 *
 *   pagewarm warm [options] PATH...    bring files into the page cache
 *   pagewarm stat [options] PATH...    report how much of them is cached
 *   pagewarm evict [options] PATH...   drop their clean pages from the cache
 *
 * Exit status: 0 when every path was handled, 1 when some could not be (each
 * one is reported and the rest still handled), 2 for a usage error, 130 when
 * interrupted.
 */
import * as fs from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { getSystemErrorMap, parseArgs } from 'node:util';
import { prepareForRead } from '../core/warm';
import { evict, residency, type Residency } from '../core/residency';
import { capabilities, configure, stats } from '../core/config';
import { packageRoot } from '../core/native';

/** Where the command writes; `isTTY` on stderr turns the progress bar on. */
export interface CliStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/** Exit statuses of {@link main}. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const USAGE = `Usage: pagewarm <warm|stat|evict> [options] PATH...

Commands:
  warm     bring files into the page cache (on pagewarm's threads, no copy)
  stat     report how much of each file is in the page cache
  evict    drop the files' clean pages from the page cache

Directories are walked recursively. Options:
  -d, --max-depth N   descend at most N directory levels below each PATH
                      (0: only the PATHs themselves; default: no limit)
  -o, --offset N      start of the range in each file, in bytes (default 0)
  -l, --length N      bytes of the range in each file (default: to the end;
                      0: an empty range)
                      N may end in K, M, G or T (powers of 1024): 64K, 2G
  -t, --threads N     pagewarm threads, 1-256 (default: one per CPU, 2 to 4,
                      or PAGEWARM_THREADS)
  -L, --dereference   follow symbolic links (default: skip them)
      --cross-mounts  enter directories on other filesystems (default: stay
                      on each PATH's filesystem)
  -v, --verbose       one line per file
  -q, --quiet         no summary and no progress bar
      --no-progress   no progress bar (it is shown only when stderr is a terminal)
      --json          print one JSON document on stdout instead of text
  -h, --help          this help
  -V, --version       print the version

Exit status: 0 all paths handled, 1 some paths failed (each is reported, the
rest are still handled), 2 bad usage, 130 interrupted.
`;

type Command = 'warm' | 'stat' | 'evict';

interface Options {
  command: Command;
  paths: string[];
  maxDepth: number;
  offset: number;
  length: number | undefined;
  threads: number | undefined;
  dereference: boolean;
  crossMounts: boolean;
  verbose: boolean;
  quiet: boolean;
  progress: boolean;
  json: boolean;
}

/** One file as the walk found it. */
interface Entry {
  path: string;
  /** Named on the command line (block devices are taken only then). */
  explicit: boolean;
}

/** A file's outcome, as printed by --json. */
export interface FileResult {
  path: string;
  /** Bytes of the file's range (clamped to its size). */
  bytes: number;
  /** Pages the range touches. */
  pages: number;
  /** Of those, pages in the page cache afterwards; null when the kernel will not tell. */
  residentPages: number | null;
  residentBytes: number | null;
  source: Residency['source'];
  /** warm: bytes of the range the warm-up covered. */
  warmedBytes?: number;
}

/** A path that could not be handled. */
export interface PathError {
  path: string;
  code: string;
  message: string;
}

/** The summary, as printed by --json. */
export interface Summary {
  files: number;
  directories: number;
  bytes: number;
  pages: number;
  /** Resident pages among the files whose residency is known. */
  residentPages: number;
  residentBytes: number;
  /** Pages of files whose residency the kernel would not tell (not the owner, or the fallback). */
  unknownPages: number;
  /** Bytes of those files' ranges. */
  unknownBytes: number;
  /** residentPages / (pages - unknownPages) in percent; null when nothing is known. */
  residentPercent: number | null;
  warmedBytes?: number;
  skipped: { symlinks: number; otherMounts: number; special: number; hardLinks: number; brokenLinks: number };
  errors: number;
  interrupted: boolean;
  elapsedMs: number;
}

/** The whole --json document. */
export interface JsonReport {
  command: Command;
  version: string;
  capabilities: ReturnType<typeof capabilities>;
  files: FileResult[];
  errors: PathError[];
  summary: Summary;
}

class UsageError extends Error {}

const systemErrors = getSystemErrorMap();

function parseBytes(value: string, name: string): number {
  const m = /^(\d+)([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const scale = m ? 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  const n = m ? Number(m[1]) * scale : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new UsageError(`--${name}: expected a byte count such as 4096, 64K, 1M or 2G, got '${value}'`);
  }
  return n;
}

function parseInteger(value: string, name: string, min: number, max: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name}: expected an integer from ${min} to ${max === Infinity ? 'up' : max}, got '${value}'`);
  }
  return n;
}

function parseOptions(argv: string[], streams: CliStreams): Options | 'help' | 'version' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'max-depth': { type: 'string', short: 'd' },
        offset: { type: 'string', short: 'o' },
        length: { type: 'string', short: 'l' },
        threads: { type: 'string', short: 't' },
        dereference: { type: 'boolean', short: 'L' },
        'cross-mounts': { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v' },
        quiet: { type: 'boolean', short: 'q' },
        'no-progress': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.version) return 'version';
  const [command, ...paths] = parsed.positionals;
  if (command === undefined) throw new UsageError('missing command: warm, stat or evict');
  if (command !== 'warm' && command !== 'stat' && command !== 'evict') {
    throw new UsageError(`unknown command '${command}': use warm, stat or evict`);
  }
  if (paths.length === 0) throw new UsageError(`${command}: missing PATH`);
  return {
    command,
    paths,
    maxDepth: v['max-depth'] === undefined ? Infinity : parseInteger(v['max-depth'], 'max-depth', 0, Number.MAX_SAFE_INTEGER),
    offset: v.offset === undefined ? 0 : parseBytes(v.offset, 'offset'),
    length: v.length === undefined ? undefined : parseBytes(v.length, 'length'),
    threads: v.threads === undefined ? undefined : parseInteger(v.threads, 'threads', 1, 256),
    dereference: v.dereference === true,
    crossMounts: v['cross-mounts'] === true,
    verbose: v.verbose === true,
    quiet: v.quiet === true,
    json: v.json === true,
    progress: streams.stderr.isTTY === true && v['no-progress'] !== true && v.quiet !== true && v.json !== true,
  };
}

/** "no such file or directory (ENOENT)" for system errors, the message otherwise. */
function explain(err: unknown): { code: string; text: string } {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.errno === 'number' && typeof e.code === 'string') {
    const description = systemErrors.get(e.errno)?.[1] ?? e.message;
    return { code: e.code, text: `${description} (${e.code})` };
  }
  return { code: typeof e?.code === 'string' ? e.code : 'ERROR', text: e instanceof Error ? e.message : String(err) };
}

/** Binary units the way vmtouch prints them: 0, 512, 4K, 1.5M, 3G. */
export function formatBytes(n: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const shown = i === 0 || v >= 10 || Number.isInteger(v) ? Math.round(v).toString() : v.toFixed(1);
  return `${shown}${units[i]}`;
}

function formatPercent(p: number): string {
  if (p === 0 || p === 100) return `${p}%`;
  return `${Number(p.toPrecision(3))}%`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** The walk: regular files under each PATH, and what it skipped. */
class Walk {
  readonly entries: Entry[] = [];
  directories = 0;
  readonly skipped = { symlinks: 0, otherMounts: 0, special: 0, hardLinks: 0, brokenLinks: 0 };
  private readonly seenDirs = new Set<string>();
  private readonly seenFiles = new Set<string>();

  constructor(
    private readonly opts: Options,
    private readonly fail: (p: string, err: unknown) => void,
    private readonly note: (message: string) => void,
  ) {}

  run(): void {
    for (const arg of this.opts.paths) {
      let st: fs.Stats;
      try {
        st = this.opts.dereference ? fs.statSync(arg) : fs.lstatSync(arg);
      } catch (err) {
        this.fail(arg, err);
        continue;
      }
      if (st.isSymbolicLink()) {
        this.skipped.symlinks++;
        this.note(`skipping symbolic link '${arg}' (use -L to follow symbolic links)`);
        continue;
      }
      if (!st.isDirectory() && !st.isFile() && !st.isBlockDevice()) {
        const err = Object.assign(new Error('not a regular file, block device or directory'), { code: 'EINVAL' });
        this.fail(arg, err);
        continue;
      }
      this.visit(arg, st, 0, st.dev, true);
    }
  }

  private visit(p: string, st: fs.Stats, depth: number, rootDev: number, explicit: boolean): void {
    const key = `${st.dev}:${st.ino}`;
    if (!st.isDirectory()) {
      // A file reached twice (hard links, or -L) is handled once, as vmtouch does.
      if (this.seenFiles.has(key)) {
        this.skipped.hardLinks++;
        return;
      }
      this.seenFiles.add(key);
      this.entries.push({ path: p, explicit });
      return;
    }
    if (this.seenDirs.has(key)) return; // a loop, or the same tree twice through -L
    this.seenDirs.add(key);
    this.directories++;
    if (depth >= this.opts.maxDepth) return;
    let names: string[];
    try {
      names = fs.readdirSync(p);
    } catch (err) {
      this.fail(p, err);
      return;
    }
    names.sort();
    for (const name of names) {
      const child = path.join(p, name);
      let cst: fs.Stats;
      try {
        cst = fs.lstatSync(child);
        if (cst.isSymbolicLink()) {
          if (!this.opts.dereference) {
            this.skipped.symlinks++;
            continue;
          }
          try {
            cst = fs.statSync(child);
          } catch {
            this.skipped.brokenLinks++;
            continue;
          }
        }
      } catch (err) {
        this.fail(child, err);
        continue;
      }
      if (!cst.isFile() && !cst.isDirectory()) {
        this.skipped.special++;
        continue;
      }
      if (cst.dev !== rootDev && !this.opts.crossMounts) {
        this.skipped.otherMounts++;
        continue;
      }
      this.visit(child, cst, depth + 1, rootDev, false);
    }
  }
}

/** The progress bar on stderr: bytes, rate and ETA, redrawn at most 10 times a second. */
class Progress {
  private timer: NodeJS.Timeout | undefined;
  private readonly started = performance.now();
  private readonly baseline = stats().warmedBytes;
  private finishedBytes = 0;
  total = 0;
  filesDone = 0;

  constructor(
    private readonly stream: CliStreams['stderr'],
    private readonly files: number,
  ) {}

  start(): void {
    this.draw();
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref();
  }

  fileDone(bytes: number): void {
    this.finishedBytes += bytes;
    this.filesDone++;
  }

  private done(): number {
    // The warm-up counter moves chunk by chunk; finished files count in full.
    const counted = stats().warmedBytes - this.baseline;
    return Math.min(this.total, Math.max(counted, this.finishedBytes));
  }

  private draw(): void {
    const done = this.done();
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const fraction = this.total > 0 ? done / this.total : 1;
    const width = Math.max(10, Math.min(30, (this.stream.columns ?? 80) - 60));
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const line =
      `${bar} ${formatBytes(done)}/${formatBytes(this.total)}  ${formatBytes(rate)}/s  ` +
      `ETA ${formatDuration(eta)}  ${this.filesDone}/${this.files} files`;
    this.stream.write(`\r${line}\x1b[K`);
  }

  /** Draws the final state, then clears the line for the summary. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.draw();
    this.stream.write('\r\x1b[K');
  }
}

function version(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Runs the command line `argv` (without node and the script) and resolves
 * with the exit status. Output goes to `streams`; the process is not exited.
 */
export async function main(argv: string[], streams: CliStreams = process): Promise<number> {
  const { stdout, stderr } = streams;
  let opts: Options;
  try {
    const parsed = parseOptions(argv, streams);
    if (parsed === 'help') {
      stdout.write(USAGE);
      return EXIT.ok;
    }
    if (parsed === 'version') {
      stdout.write(`${version()}\n`);
      return EXIT.ok;
    }
    opts = parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr.write(`pagewarm: ${err.message}\nTry 'pagewarm --help' for more information.\n`);
    return EXIT.usage;
  }

  if (opts.threads !== undefined) configure({ threads: opts.threads });
  const started = performance.now();
  const errors: PathError[] = [];
  const fail = (p: string, err: unknown): void => {
    const { code, text } = explain(err);
    errors.push({ path: p, code, message: text });
    stderr.write(`pagewarm: ${p}: ${text}\n`);
  };
  const note = (message: string): void => {
    if (!opts.quiet && !opts.json) stderr.write(`pagewarm: ${message}\n`);
  };

  const walk = new Walk(opts, fail, note);
  walk.run();

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  const progress = opts.command === 'warm' && opts.progress ? new Progress(stderr, walk.entries.length) : undefined;
  if (progress) {
    for (const entry of walk.entries) {
      try {
        const size = fs.statSync(entry.path).size;
        progress.total += Math.max(0, Math.min(opts.length ?? Infinity, size - opts.offset));
      } catch {
        // reported when the file is opened
      }
    }
    progress.start();
  }

  const results: Array<FileResult | undefined> = new Array(walk.entries.length);
  const handleFile = async (entry: Entry): Promise<FileResult | undefined> => {
    const flags =
      fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (opts.dereference ? 0 : (fs.constants.O_NOFOLLOW ?? 0));
    let file: FileHandle;
    try {
      file = await open(entry.path, flags);
    } catch (err) {
      fail(entry.path, err);
      return undefined;
    }
    try {
      const st = await file.stat();
      if (!st.isFile() && !(entry.explicit && st.isBlockDevice())) {
        fail(entry.path, Object.assign(new Error('not a regular file'), { code: 'EINVAL' }));
        return undefined;
      }
      let warmedBytes: number | undefined;
      if (opts.command === 'warm') {
        warmedBytes = await prepareForRead(file, opts.offset, opts.length, { signal: controller.signal });
        progress?.fileDone(warmedBytes);
      } else if (opts.command === 'evict') {
        evict(file, opts.offset, opts.length);
      }
      const r = await residency(file, opts.offset, opts.length);
      const out: FileResult = {
        path: entry.path,
        bytes: r.bytes,
        pages: r.pages,
        residentPages: r.residentPages,
        residentBytes: r.residentBytes,
        source: r.source,
      };
      if (warmedBytes !== undefined) out.warmedBytes = warmedBytes;
      return out;
    } catch (err) {
      if ((err as Error).name === 'AbortError') return undefined;
      fail(entry.path, err);
      return undefined;
    } finally {
      await file.close().catch(() => {});
    }
  };

  // Files in flight: one per pagewarm thread for warming (more would only
  // interleave reads on the disk); more for the cheap stat and evict.
  const parallel = opts.command === 'warm' ? stats().configuredThreads : 16;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < walk.entries.length && !controller.signal.aborted) {
      const i = next++;
      results[i] = await handleFile(walk.entries[i]);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(parallel, walk.entries.length) }, lane));
  } finally {
    process.removeListener('SIGINT', onSignal);
    progress?.stop();
  }

  const files = results.filter((r): r is FileResult => r !== undefined);
  const summary = summarize(files, walk, errors.length, controller.signal.aborted, performance.now() - started, opts);
  const caps = capabilities();
  if (opts.json) {
    const report: JsonReport = { command: opts.command, version: version(), capabilities: caps, files, errors, summary };
    stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    if (opts.verbose) for (const f of files) stdout.write(fileLine(f));
    if (!opts.quiet) stdout.write(summaryText(summary, opts.command, caps));
  }
  if (summary.interrupted) return EXIT.interrupted;
  return errors.length > 0 ? EXIT.failed : EXIT.ok;
}

function summarize(files: FileResult[], walk: Walk, errors: number, interrupted: boolean, elapsedMs: number, opts: Options): Summary {
  const s: Summary = {
    files: files.length,
    directories: walk.directories,
    bytes: 0,
    pages: 0,
    residentPages: 0,
    residentBytes: 0,
    unknownPages: 0,
    unknownBytes: 0,
    residentPercent: null,
    skipped: walk.skipped,
    errors,
    interrupted,
    elapsedMs: Math.round(elapsedMs * 1000) / 1000,
  };
  if (opts.command === 'warm') s.warmedBytes = 0;
  for (const f of files) {
    s.bytes += f.bytes;
    s.pages += f.pages;
    if (f.residentPages === null) {
      s.unknownPages += f.pages;
      s.unknownBytes += f.bytes;
    } else {
      s.residentPages += f.residentPages;
      s.residentBytes += f.residentBytes ?? 0;
    }
    if (s.warmedBytes !== undefined) s.warmedBytes += f.warmedBytes ?? 0;
  }
  const known = s.pages - s.unknownPages;
  if (known > 0) s.residentPercent = Math.round((s.residentPages / known) * 100000) / 1000;
  return s;
}

function fileLine(f: FileResult): string {
  if (f.residentPages === null) return `${f.path}  unknown/${f.pages} pages\n`;
  const pct = f.pages === 0 ? 100 : (f.residentPages / f.pages) * 100;
  return `${f.path}  ${f.residentPages}/${f.pages} pages  ${formatPercent(pct)}\n`;
}

function summaryText(s: Summary, command: Command, caps: ReturnType<typeof capabilities>): string {
  const row = (label: string, value: string): string => `${label.padStart(16)}: ${value}\n`;
  let out = row('Files', String(s.files)) + row('Directories', String(s.directories));
  const known = s.pages - s.unknownPages;
  if (s.files > 0 && known === 0 && s.pages > 0) {
    const why = caps.native ? 'the kernel tells only the owner or a writer of a file' : `portable fallback: ${caps.fallbackReason}`;
    out += row('Resident Pages', `unknown/${s.pages}  (${why})`);
  } else {
    const pct = s.residentPercent === null ? '' : `  ${formatPercent(s.residentPercent)}`;
    const sizes = `${formatBytes(s.residentBytes)}/${formatBytes(s.bytes - s.unknownBytes)}`;
    out += row('Resident Pages', `${s.residentPages}/${known}  ${sizes}${pct}`);
    if (s.unknownPages > 0) out += row('Unknown Pages', `${s.unknownPages}  (the kernel tells only the owner or a writer of a file)`);
  }
  if (command === 'warm' && s.warmedBytes !== undefined) {
    const seconds = s.elapsedMs / 1000;
    out += row('Warmed', `${formatBytes(s.warmedBytes)}  (${formatBytes(seconds > 0 ? s.warmedBytes / seconds : 0)}/s)`);
  }
  if (command === 'evict' && !caps.native) out += row('Note', `evict has no effect in the portable fallback (${caps.fallbackReason})`);
  const skipped = Object.entries(s.skipped)
    .filter(([, n]) => n > 0)
    .map(([what, n]) => `${n} ${SKIP_NAMES[what as keyof Summary['skipped']][n === 1 ? 0 : 1]}`);
  if (skipped.length > 0) out += row('Skipped', skipped.join(', '));
  if (s.errors > 0) out += row('Errors', String(s.errors));
  if (s.interrupted) out += row('Interrupted', 'yes');
  out += row('Elapsed', `${(s.elapsedMs / 1000).toPrecision(3)} seconds`);
  return out;
}

const SKIP_NAMES: Record<keyof Summary['skipped'], [string, string]> = {
  symlinks: ['symbolic link', 'symbolic links'],
  otherMounts: ['on another filesystem', 'on other filesystems'],
  special: ['special file', 'special files'],
  hardLinks: ['hard link already counted', 'hard links already counted'],
  brokenLinks: ['broken symbolic link', 'broken symbolic links'],
};

/** The `pagewarm` executable: runs {@link main} on process.argv and sets the exit code. */
export function run(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); // `pagewarm stat -v dir | head`
    throw err;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`pagewarm: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 70;
    },
  );
}

if (require.main === module) run();
