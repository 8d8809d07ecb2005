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
import { open, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { prepareForRead } from '../core/warm';
import { evict, residency } from '../core/residency';
import { capabilities, configure, stats } from '../core/config';
import { packageRoot } from '../core/native';
import { parseOptions, UsageError, USAGE, type CliStreams, type Options } from './args';
import { Walk, type Entry } from './walk';
import { Progress } from './progress';
import { explain, fileLine, summarize, summaryText, type FileResult, type JsonReport, type PathError } from './report';

export type { CliStreams } from './args';
export type { FileResult, JsonReport, PathError, Summary } from './report';
export { formatBytes } from './report';

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
