/**
 * What the command reports: per-file results and the summary (the --json
 * document's types), the text lines printed instead of JSON, and the units
 * they are written in.
 */
import { getSystemErrorMap } from 'node:util';
import type { Capabilities } from '../core/config';
import type { Residency } from '../core/residency';
import type { Command, Options } from './args';
import type { Walk } from '../files/walk';

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
  /** stat --map: the resident byte ranges, [offset, length] each. */
  residentRanges?: Array<[number, number]>;
  /** stat --map (text only): the map line. */
  map?: string;
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
  skipped: { symlinks: number; otherMounts: number; special: number; hardLinks: number; brokenLinks: number; excluded: number; tooLarge: number };
  errors: number;
  interrupted: boolean;
  elapsedMs: number;
  /** warm --budget: warming stopped when the budget was spent. */
  stoppedBy?: 'budget';
}

/** The whole --json document. */
export interface JsonReport {
  command: Command;
  version: string;
  capabilities: Capabilities;
  files: FileResult[];
  errors: PathError[];
  summary: Summary;
}

/**
 * A path's error for the report: its code, and "no such file or directory
 * (ENOENT)" for system errors, the message otherwise ('ERROR' for an error
 * without a code).
 */
export function explain(err: unknown): { code: string; text: string } {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.errno === 'number' && typeof e.code === 'string') {
    const description = systemErrors.get(e.errno)?.[1] ?? e.message;
    return { code: e.code, text: `${description} (${e.code})` };
  }
  return { code: typeof e?.code === 'string' ? e.code : 'ERROR', text: e instanceof Error ? e.message : String(err) };
}

/**
 * The summary of the files handled, built as they are: {@link addFile} for
 * each, then {@link finish} with the walk's directories and skips, `errors`
 * paths that failed, whether the run was interrupted, and `elapsedMs`
 * rounded to the microsecond. `warmedBytes` only for warm.
 */
export function newSummary(opts: Options): Summary {
  const s: Summary = {
    files: 0,
    directories: 0,
    bytes: 0,
    pages: 0,
    residentPages: 0,
    residentBytes: 0,
    unknownPages: 0,
    unknownBytes: 0,
    residentPercent: null,
    skipped: { symlinks: 0, otherMounts: 0, special: 0, hardLinks: 0, brokenLinks: 0, excluded: 0, tooLarge: 0 },
    errors: 0,
    interrupted: false,
    elapsedMs: 0,
  };
  if (opts.command === 'warm') s.warmedBytes = 0;
  return s;
}

/** Counts one file handled into the summary. */
export function addFile(s: Summary, f: FileResult): void {
  s.files++;
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

/** Completes the summary once every file is counted. */
export function finish(s: Summary, walk: Walk, errors: number, interrupted: boolean, elapsedMs: number): Summary {
  s.directories = walk.directories;
  s.skipped = walk.skipped;
  s.errors = errors;
  s.interrupted = interrupted;
  s.elapsedMs = Math.round(elapsedMs * 1000) / 1000;
  const known = s.pages - s.unknownPages;
  if (known > 0) s.residentPercent = Math.round((s.residentPages / known) * 100000) / 1000;
  return s;
}

/** The -v line of one file: "path  resident/pages pages  percent". */
export function fileLine(f: FileResult): string {
  const map = f.map === undefined ? '' : `  [${f.map}]\n`;
  if (f.residentPages === null) return `${f.path}  unknown/${f.pages} pages\n${f.map === undefined ? '' : '  (the kernel does not tell this process)\n'}`;
  const pct = f.pages === 0 ? 100 : (f.residentPages / f.pages) * 100;
  return `${f.path}  ${f.residentPages}/${f.pages} pages  ${formatPercent(pct)}\n${map}`;
}

/** The text summary, vmtouch-style: one right-aligned "Label: value" row per line. */
export function summaryText(s: Summary, command: Command, caps: Capabilities): string {
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
  if (s.stoppedBy) out += row('Stopped', 'the budget was spent');
  if (s.interrupted) out += row('Interrupted', 'yes');
  out += row('Elapsed', `${(s.elapsedMs / 1000).toPrecision(3)} seconds`);
  return out;
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

/** A percentage with three significant digits: 0%, 33.3%, 100%. */
export function formatPercent(p: number): string {
  if (p === 0 || p === 100) return `${p}%`;
  return `${Number(p.toPrecision(3))}%`;
}

/** Seconds as mm:ss, or h:mm:ss from an hour; '--:--' when not finite. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

const systemErrors = getSystemErrorMap();

const SKIP_NAMES: Record<keyof Summary['skipped'], [string, string]> = {
  symlinks: ['symbolic link', 'symbolic links'],
  otherMounts: ['on another filesystem', 'on other filesystems'],
  special: ['special file', 'special files'],
  hardLinks: ['hard link already counted', 'hard links already counted'],
  brokenLinks: ['broken symbolic link', 'broken symbolic links'],
  excluded: ['left out by --include/--exclude', 'left out by --include/--exclude'],
  tooLarge: ['larger than --max-size', 'larger than --max-size'],
};
