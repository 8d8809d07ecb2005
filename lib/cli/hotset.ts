/**
 * `pagewarm snapshot PATH... -o FILE` and `pagewarm restore FILE`: the hot
 * set calls of lib/files/hotset.ts, with the command's output conventions
 * (a vmtouch-like summary, or --json; progress on a terminal).
 */
import { restore, saveHotSet, snapshot, type HotSet, type RestoreResult } from '../files/hotset';
import type { CliStreams, Options } from './args';
import { explain, formatBytes, type PathError } from './report';

/** The --json document of snapshot and restore. */
export interface HotSetReport {
  command: 'snapshot' | 'restore';
  file: string;
  files: number;
  /** snapshot: bytes resident in the hot set; restore: bytes read back. */
  bytes: number;
  /** snapshot: files whose residency the kernel would not tell. */
  unknown?: number;
  /** restore: files left alone, with the reason. */
  skipped?: Array<{ path: string; reason: string; code?: string }>;
  stoppedBy?: 'budget';
  errors: PathError[];
  elapsedMs: number;
}

/** Runs snapshot or restore; resolves with the exit status (0, 1 some files failed, 130 interrupted). */
export async function runHotSet(opts: Options, streams: CliStreams, signal: AbortSignal): Promise<number> {
  const started = performance.now();
  const errors: PathError[] = [];
  let report: HotSetReport;
  try {
    if (opts.command === 'snapshot') {
      const set = await snapshot(opts.paths, { followSymlinks: opts.dereference, crossMounts: opts.crossMounts, signal });
      await saveHotSet(opts.output!, set);
      report = { command: 'snapshot', file: opts.output!, files: set.files.length, bytes: hotBytes(set), unknown: set.files.filter((f) => f.source === 'unknown').length, errors, elapsedMs: 0 };
    } else {
      const r: RestoreResult = await restore(opts.paths[0]!, { budget: opts.budget, signal, onProgress: progress(opts, streams) });
      if (opts.progress) streams.stderr.write('\r\x1b[K');
      report = {
        command: 'restore', file: opts.paths[0]!, files: r.files, bytes: r.restoredBytes,
        skipped: r.skipped.map((s) => ({ path: s.path, reason: s.reason, ...(s.error ? { code: (s.error as NodeJS.ErrnoException).code } : {}) })),
        errors, elapsedMs: 0,
      };
      if (r.stoppedBy) report.stoppedBy = r.stoppedBy;
    }
  } catch (err) {
    if ((err as Error).name === 'AbortError') return 130;
    const { code, text } = explain(err);
    const path = opts.command === 'snapshot' ? opts.output! : opts.paths[0]!;
    // A snapshot file's problems name the file already.
    streams.stderr.write(code === 'ERR_PAGEWARM_SNAPSHOT' ? `pagewarm: ${(err as Error).message}\n` : `pagewarm: ${path}: ${text}\n`);
    errors.push({ path, code, message: text });
    return 1;
  }
  report.elapsedMs = Math.round((performance.now() - started) * 1000) / 1000;
  if (opts.json) streams.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (!opts.quiet) streams.stdout.write(text(report));
  return 0;
}

/** Bytes of the files' resident pages (the last page of a file counts only its bytes). */
function hotBytes(set: HotSet): number {
  let bytes = 0;
  for (const f of set.files) {
    for (let k = 0; k < f.ranges.length; k += 2) {
      bytes += Math.min(f.size, (f.ranges[k]! + f.ranges[k + 1]!) * set.pageSize) - f.ranges[k]! * set.pageSize;
    }
  }
  return bytes;
}

function progress(opts: Options, streams: CliStreams): ((p: { files: number; restoredBytes: number }) => void) | undefined {
  if (!opts.progress) return undefined;
  return (p) => streams.stderr.write(`\r${p.files} files  ${formatBytes(p.restoredBytes)} read\x1b[K`);
}

function text(r: HotSetReport): string {
  const row = (label: string, value: string): string => `${label.padStart(16)}: ${value}\n`;
  let out = row('Files', String(r.files));
  if (r.command === 'snapshot') {
    out += row('Hot', formatBytes(r.bytes));
    if (r.unknown) out += row('Unknown', `${r.unknown} (the kernel does not tell this user what of them is cached)`);
    out += row('Written', r.file);
  } else {
    out += row('Restored', formatBytes(r.bytes));
    const by = new Map<string, number>();
    for (const s of r.skipped ?? []) by.set(s.reason, (by.get(s.reason) ?? 0) + 1);
    if (by.size > 0) out += row('Skipped', [...by].map(([k, n]) => `${n} ${k}`).join(', '));
    if (r.stoppedBy) out += row('Stopped', 'the budget was spent');
  }
  out += row('Elapsed', `${(r.elapsedMs / 1000).toPrecision(3)} seconds`);
  return out;
}
