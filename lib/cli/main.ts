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
 *
 * This module runs the command; ./args parses the command line, ./walk finds
 * the files, ./progress draws the progress bar and ./report writes the
 * results.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capabilities, configure } from '../core/config';
import { batches, toPlan, type FileReport } from '../files/each';
import { packageRoot } from '../core/native';
import { parseOptions, UsageError, USAGE, type CliStreams, type Options } from './args';
import { Walk } from '../files/walk';
import { Budget, toBudgetSpec } from '../files/budget';
import { runHotSet } from './hotset';
import { Progress } from './progress';
import { byteRanges, MAP_LEGEND, mapWidth, residencyMap } from './map';
import { addFile, explain, fileLine, finish, newSummary, summaryText, type FileResult, type JsonReport, type PathError } from './report';

export type { CliStreams } from './args';
export type { FileResult, JsonReport, PathError, Summary } from './report';
export { formatBytes } from './report';

const PAGE = capabilities().pageSize;

/** Exit statuses of {@link main}. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

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
  if (opts.command === 'snapshot' || opts.command === 'restore') {
    const controller = new AbortController();
    const onSignal = (): void => controller.abort();
    process.once('SIGINT', onSignal);
    try {
      return await runHotSet(opts, streams, controller.signal);
    } finally {
      process.removeListener('SIGINT', onSignal);
    }
  }
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
  const listed = (): string[] => {
    if (opts.filesFrom === undefined) return [];
    try {
      const list = fs.readFileSync(opts.filesFrom === '-' ? 0 : opts.filesFrom, 'utf8');
      return list.split(opts.nul ? '\0' : '\n').filter((p) => p !== '');
    } catch (err) {
      fail(opts.filesFrom, err);
      return [];
    }
  };
  // The PATHs, then the list's paths, walked as the work asks for files: the
  // walk on this thread and the work on pagewarm's threads overlap. The
  // progress bar needs the whole first, to know its total.
  function* walked(): Generator<string, void, undefined> {
    for (const run of walk.walk(opts.paths)) yield* run;
    for (const run of walk.walk(listed())) yield* run;
  }
  let paths: Iterable<string> = walked();

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  let progress: Progress | undefined;
  if (opts.command === 'warm' && opts.progress) {
    // The bar's whole, in files and bytes: the whole walk and a stat of every file first, on a terminal only.
    const all = [...paths];
    paths = all;
    progress = new Progress(stderr, all.length);
    for (const path of all) {
      try {
        const size = fs.statSync(path).size;
        progress.total += Math.max(0, Math.min(opts.length ?? Infinity, size - opts.offset));
      } catch {
        // reported when the file is opened
      }
    }
    progress.start();
  }

  // Every file on the batch path: opened, described, worked on and closed
  // on pagewarm's threads, many files a job.
  const files: FileResult[] = []; // kept for --json and -v only
  const keep = opts.json || opts.verbose || opts.map;
  const summary = newSummary(opts);
  let stoppedBy: 'budget' | undefined;
  const operation = opts.command === 'stat' ? 'residency' : (opts.command as 'warm' | 'evict');
  try {
    const plan = toPlan(operation, paths, {
      offset: opts.offset,
      length: opts.length,
      maxSize: opts.maxSize,
      followSymlinks: opts.dereference,
      blockDevices: true, // the walk yields block devices only where they were named
      signal: controller.signal,
    });
    if (opts.map) plan.op = 3; // whole files, with their resident ranges
    const bar = progress;
    if (bar) plan.watch = { intervalMs: 100, report: (bytes) => bar.running(bytes) };
    const spec = toBudgetSpec(opts.budget, '--budget');
    if (spec) {
      const budget = new Budget(spec);
      plan.budget = budget.handle;
      plan.beforeBatch = () => budget.check();
    }
    for await (const batch of batches(plan, paths)) {
      for (const r of batch) {
        if (r.stopped) stoppedBy = 'budget';
        if (r.error) fail(r.path, r.error);
        else if (r.skipped) walk.skipped.tooLarge++;
        else if (r.stopped) continue;
        else if (r.duplicate) walk.skipped.hardLinks++;
        else {
          const f = fileResult(r, opts, mapWidth(stdout.columns));
          addFile(summary, f);
          if (keep) files.push(f);
        }
        if (progress && !r.error && !r.skipped && !r.duplicate) progress.fileDone(r.bytes);
      }
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  } finally {
    process.removeListener('SIGINT', onSignal);
    progress?.stop();
  }

  finish(summary, walk, errors.length, controller.signal.aborted, performance.now() - started);
  if (stoppedBy) summary.stoppedBy = stoppedBy;
  const caps = capabilities();
  if (opts.json) {
    const report: JsonReport = { command: opts.command, version: version(), capabilities: caps, files, errors, summary };
    stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    if (opts.map) stdout.write(`map: ${MAP_LEGEND}\n`);
    if (opts.verbose || opts.map) for (const f of files) stdout.write(fileLine(f));
    if (!opts.quiet) stdout.write(summaryText(summary, opts.command, caps));
  }
  if (summary.interrupted) return EXIT.interrupted;
  return errors.length > 0 ? EXIT.failed : EXIT.ok;
}

/** What --json and -v say of a file done. */
function fileResult(r: FileReport, opts: Options, width: number): FileResult {
  const out: FileResult = {
    path: r.path,
    bytes: r.bytes,
    pages: r.pages,
    residentPages: r.residentPages,
    residentBytes: r.residentPages === null ? null : r.residentPages >= r.pages ? r.bytes : Math.min(r.bytes, r.residentPages * PAGE),
    source: r.source,
  };
  if (opts.command === 'warm') out.warmedBytes = r.bytes;
  if (opts.map && r.residentRanges !== undefined && r.residentPages !== null) {
    if (opts.json) out.residentRanges = byteRanges(r.residentRanges, PAGE, r.bytes);
    else out.map = residencyMap(r.residentRanges, r.pages, width);
  } else if (opts.map && !opts.json) {
    out.map = ''; // residency unknown to this process: the line says so
  }
  return out;
}

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

/** The package's version from its package.json; 'unknown' when that cannot be read. */
function version(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

if (require.main === module) run();
