/**
 * The `pagewarm` command line: its usage text, its options, and the checks
 * that turn argv into {@link Options} or a {@link UsageError}.
 */
import { parseArgs } from 'node:util';
import { compileGlob, type Glob } from '../files/glob';
import { toBudgetSpec } from '../files/budget';

/** Where the command writes; `isTTY` on stderr turns the progress bar on. */
export interface CliStreams {
  stdout: NodeJS.WritableStream & { columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/** `pagewarm --help`. */
export const USAGE = `Usage: pagewarm <warm|stat|evict> [options] PATH...
       pagewarm <warm|stat|evict> [options] --files-from FILE [PATH...]
       pagewarm snapshot [options] PATH... -o FILE
       pagewarm restore [options] FILE

Commands:
  warm     bring files into the page cache (on pagewarm's threads, no copy)
  stat     report how much of each file is in the page cache
  evict    drop the files' clean pages from the page cache
  snapshot record which pages of the files are cached, into FILE (a hot set)
  restore  read back the pages of a hot set that are not cached, of the
           files that are unchanged since

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
  -I, --include GLOB  take only files whose name matches GLOB (repeatable;
                      a GLOB with '/' matches the path below its PATH, and
                      '**' any directories)
  -i, --exclude GLOB  skip files and directories whose name matches GLOB
                      (repeatable; a directory's whole tree is skipped)
  -m, --max-size N    skip files larger than N bytes (64K, 2G, ...)
  -b, --budget N|P%   warm, restore: read at most N bytes from the disk, or
                      P% of the memory this process can fill (the lower of
                      MemAvailable and its memory cgroup's headroom)
  -o FILE, --output FILE   snapshot: the hot set file to write (atomically)
  -f, --files-from F  also take the paths listed in file F, one a line
                      ('-': standard input); directories in it are walked
  -0, --null          the list's paths end in NUL, not newline (find -print0)
      --cross-mounts  enter directories on other filesystems (default: stay
                      on each PATH's filesystem)
  -v, --verbose       one line per file
      --map           stat: a residency map of each whole file, one character
                      per part ('#' all cached, '+' half or more, '.' some,
                      ' ' none), as wide as the terminal or 60 columns;
                      --json: the cached byte ranges of each file
  -q, --quiet         no summary and no progress bar
      --no-progress   no progress bar (it is shown only when stderr is a terminal)
      --json          print one JSON document on stdout instead of text
  -h, --help          this help
  -V, --version       print the version

Exit status: 0 all paths handled, 1 some paths failed (each is reported, the
rest are still handled), 2 bad usage, 130 interrupted.
`;

/** The command's subcommands. */
export type Command = 'warm' | 'stat' | 'evict' | 'snapshot' | 'restore';
const COMMANDS: readonly Command[] = ['warm', 'stat', 'evict', 'snapshot', 'restore'];

/** A command line, checked. */
export interface Options {
  command: Command;
  paths: string[];
  /** Directory levels to descend below each PATH; Infinity: no limit. */
  maxDepth: number;
  /** Start of the range in each file, in bytes. */
  offset: number;
  /** Bytes of the range in each file; undefined: to the end. */
  length: number | undefined;
  threads: number | undefined;
  dereference: boolean;
  crossMounts: boolean;
  verbose: boolean;
  quiet: boolean;
  /** --include patterns: when any, only files matching one are taken. */
  include: Glob[];
  /** --exclude patterns: files and directories matching one are skipped. */
  exclude: Glob[];
  /** Files larger than this are skipped; undefined: no limit. */
  maxSize: number | undefined;
  /** --files-from: a file of paths ('-': standard input). */
  filesFrom: string | undefined;
  /** The list's paths are NUL-terminated. */
  nul: boolean;
  /** --budget: bytes, or a percentage such as '50%'. */
  budget: number | string | undefined;
  /** snapshot: the file written. */
  output: string | undefined;
  /** stat --map: each whole file's resident ranges, drawn (or in --json). */
  map: boolean;
  /** Draw the progress bar: stderr is a terminal and nothing turned it off. */
  progress: boolean;
  json: boolean;
}

/** A command line the command cannot run; its message is printed after "pagewarm: ". */
export class UsageError extends Error {}

/**
 * Parses `argv` (without node and the script). `streams.stderr.isTTY`
 * decides whether the progress bar may be drawn.
 *
 * @returns The options, or 'help' / 'version' when those were asked for.
 * @throws UsageError for an unknown option or command, a missing PATH or a
 *   bad number.
 */
export function parseOptions(argv: string[], streams: CliStreams): Options | 'help' | 'version' {
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
        include: { type: 'string', short: 'I', multiple: true },
        exclude: { type: 'string', short: 'i', multiple: true },
        'max-size': { type: 'string', short: 'm' },
        'files-from': { type: 'string', short: 'f' },
        budget: { type: 'string', short: 'b' },
        output: { type: 'string' },
        null: { type: 'boolean', short: '0' },
        'cross-mounts': { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v' },
        map: { type: 'boolean' },
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
  if (command === undefined) throw new UsageError('missing command: warm, stat, evict, snapshot or restore');
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`unknown command '${command}': use warm, stat, evict, snapshot or restore`);
  }
  const cmd = command as Command;
  const filesFrom = v['files-from'];
  if (paths.length === 0 && filesFrom === undefined) throw new UsageError(`${command}: missing ${cmd === 'restore' ? 'FILE' : 'PATH'}`);
  // -o is --offset for the others, the output file for snapshot.
  const output = cmd === 'snapshot' ? v.output ?? v.offset : v.output;
  if (cmd === 'snapshot' && output === undefined) throw new UsageError('snapshot: missing -o FILE');
  if (cmd !== 'snapshot' && v.output !== undefined) throw new UsageError('--output is for snapshot');
  if (cmd === 'restore' && paths.length !== 1) throw new UsageError('restore: one FILE');
  if (v.budget !== undefined && cmd !== 'warm' && cmd !== 'restore') throw new UsageError('--budget is for warm and restore');
  const budget = v.budget === undefined ? undefined : /%\s*$/.test(v.budget) ? v.budget.trim() : parseBytes(v.budget, 'budget');
  if (typeof budget === 'string') {
    try {
      toBudgetSpec(budget, '--budget');
    } catch {
      throw new UsageError(`--budget: expected a byte count such as 64M or a percentage from 0 (exclusive) to 100, got '${v.budget}'`);
    }
  }
  if (v.null === true && filesFrom === undefined) throw new UsageError('--null needs --files-from');
  if (v.map === true && cmd !== 'stat') throw new UsageError('--map is for stat');
  if (v.map === true && (v.offset !== undefined || v.length !== undefined)) throw new UsageError('--map maps whole files: no --offset or --length');
  const globs = (list: string[] | undefined, name: string): Glob[] =>
    (list ?? []).map((g) => {
      if (g === '') throw new UsageError(`--${name}: empty pattern`);
      return compileGlob(g);
    });
  return {
    command: cmd,
    paths,
    budget,
    output,
    maxDepth: v['max-depth'] === undefined ? Infinity : parseInteger(v['max-depth'], 'max-depth', 0, Number.MAX_SAFE_INTEGER),
    offset: v.offset === undefined || cmd === 'snapshot' ? 0 : parseBytes(v.offset, 'offset'),
    length: v.length === undefined ? undefined : parseBytes(v.length, 'length'),
    threads: v.threads === undefined ? undefined : parseInteger(v.threads, 'threads', 1, 256),
    dereference: v.dereference === true,
    crossMounts: v['cross-mounts'] === true,
    include: globs(v.include, 'include'),
    exclude: globs(v.exclude, 'exclude'),
    maxSize: v['max-size'] === undefined ? undefined : parseBytes(v['max-size'], 'max-size'),
    filesFrom,
    nul: v.null === true,
    verbose: v.verbose === true,
    map: v.map === true,
    quiet: v.quiet === true,
    json: v.json === true,
    progress: streams.stderr.isTTY === true && v['no-progress'] !== true && v.quiet !== true && v.json !== true,
  };
}

/**
 * A byte count: digits, optionally followed by K, M, G or T (powers of
 * 1024, any case, an optional "B" or "iB"). `name` is the option's, for the
 * UsageError thrown for anything else or a count past 2^53.
 */
export function parseBytes(value: string, name: string): number {
  const m = /^(\d+)([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const scale = m ? 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  const n = m ? Number(m[1]) * scale : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new UsageError(`--${name}: expected a byte count such as 4096, 64K, 1M or 2G, got '${value}'`);
  }
  return n;
}

/** A decimal integer from `min` to `max`; UsageError naming option `name` otherwise. */
export function parseInteger(value: string, name: string, min: number, max: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name}: expected an integer from ${min} to ${max === Infinity ? 'up' : max}, got '${value}'`);
  }
  return n;
}
