/**
 * The hot set's file format, version 1: gzip of one JSON document,
 *
 *   { "format": "pagewarm-hotset", "version": 1, "pageSize": 4096,
 *     "created": "2026-12-04T03:00:00.000Z",
 *     "files": [{ "path": "/srv/log/0001.log", "dev": 2049, "ino": "131074",
 *                 "size": 1048576, "mtimeNs": "1764817200123456789",
 *                 "source": "pages", "ranges": [0, 16, 240, 8] }] }
 *
 * `ranges` are resident pages as (gap, count) pairs: the first page of a
 * run counted from the end of the previous run (from page 0 for the first),
 * then the run's length; `source: "unknown"` files have no ranges (the
 * kernel would not tell this process, so nothing is claimed hot). `ino` and
 * `mtimeNs` are decimal strings: 64-bit values JSON numbers cannot hold.
 * Reading checks everything; anything else is refused whole.
 */
import { gunzipSync, gzipSync } from 'node:zlib';

/** One file of a hot set: its identity when snapshotted and its resident pages. */
export interface HotFile {
  path: string;
  dev: number;
  /** The inode number, in decimal. */
  ino: string;
  size: number;
  /** The modification time in nanoseconds since the epoch, in decimal. */
  mtimeNs: string;
  /** Where the ranges come from: 'pages' (page-exact: cachestat for a file wholly resident or not, else mincore), or 'unknown' (no ranges: the kernel would not say). */
  source: 'pages' | 'unknown';
  /** Resident pages as (first page, pages) pairs, in order, not overlapping. */
  ranges: number[];
}

/** What snapshot() returns and restore() takes. */
export interface HotSet {
  format: 'pagewarm-hotset';
  version: 1;
  /** The page size the ranges count in. */
  pageSize: number;
  /** When it was taken (ISO 8601). */
  created: string;
  files: HotFile[];
}

/** A snapshot file that is not a hot set pagewarm can read: `code` ERR_PAGEWARM_SNAPSHOT. */
export class SnapshotError extends Error {
  readonly code = 'ERR_PAGEWARM_SNAPSHOT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapshotError';
  }
}

/** The bytes of a hot set file. */
export function encodeHotSet(set: HotSet): Buffer {
  const files = set.files.map((f) => ({ ...f, ranges: toGaps(f.ranges) }));
  return gzipSync(JSON.stringify({ ...set, files }), { level: 6 });
}

/** A hot set from a file's bytes, checked. @throws SnapshotError */
export function decodeHotSet(bytes: Buffer, name = 'snapshot'): HotSet {
  let doc: unknown;
  try {
    doc = JSON.parse(gunzipSync(bytes).toString('utf8'));
  } catch (err) {
    throw new SnapshotError(`${name}: not a pagewarm hot set (${(err as Error).message})`, { cause: err });
  }
  const set = checkHotSet(doc, name, true);
  return set;
}

/** Checks a hot set (from a file with gap-coded ranges, or in memory with absolute ones). @throws SnapshotError */
export function checkHotSet(doc: unknown, name: string, gapCoded: boolean): HotSet {
  const bad = (what: string): never => {
    throw new SnapshotError(`${name}: ${what}`);
  };
  if (typeof doc !== 'object' || doc === null) bad('not a pagewarm hot set');
  const d = doc as Record<string, unknown>;
  if (d.format !== 'pagewarm-hotset') bad('not a pagewarm hot set (no "format": "pagewarm-hotset")');
  if (d.version !== 1) bad(`version ${JSON.stringify(d.version)} is not one this pagewarm reads (1)`);
  if (!isCount(d.pageSize) || d.pageSize === 0) bad('bad pageSize');
  if (typeof d.created !== 'string') bad('bad created');
  if (!Array.isArray(d.files)) bad('no files');
  const page = d.pageSize as number;
  const files: HotFile[] = [];
  for (const [i, raw] of (d.files as unknown[]).entries()) {
    const f = raw as Record<string, unknown>;
    const at = `files[${i}]`;
    if (typeof f !== 'object' || f === null) bad(`${at} is not an object`);
    if (typeof f.path !== 'string' || f.path === '' || f.path.includes('\0')) bad(`${at}.path is not a path`);
    if (!isCount(f.dev)) bad(`${at}.dev`);
    if (typeof f.ino !== 'string' || !/^\d{1,20}$/.test(f.ino)) bad(`${at}.ino`);
    if (!isCount(f.size)) bad(`${at}.size`);
    if (typeof f.mtimeNs !== 'string' || !/^-?\d{1,30}$/.test(f.mtimeNs)) bad(`${at}.mtimeNs`);
    if (f.source !== 'pages' && f.source !== 'unknown') bad(`${at}.source`);
    if (!Array.isArray(f.ranges) || f.ranges.length % 2 !== 0 || !f.ranges.every(isCount)) bad(`${at}.ranges`);
    const pages = Math.ceil((f.size as number) / page);
    const ranges = gapCoded ? fromGaps(f.ranges as number[]) : (f.ranges as number[]);
    for (let k = 0; k < ranges.length; k += 2) {
      const end = ranges[k]! + ranges[k + 1]!;
      if (ranges[k + 1] === 0 || end > pages || (k > 0 && ranges[k]! < ranges[k - 2]! + ranges[k - 1]!)) bad(`${at}.ranges: out of order or past the end`);
    }
    if (f.source === 'unknown' && ranges.length > 0) bad(`${at}: an unknown file with ranges`);
    files.push({ path: f.path as string, dev: f.dev as number, ino: f.ino as string, size: f.size as number, mtimeNs: f.mtimeNs as string, source: f.source as HotFile['source'], ranges });
  }
  return { format: 'pagewarm-hotset', version: 1, pageSize: page, created: d.created as string, files };
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function toGaps(ranges: number[]): number[] {
  const out = new Array<number>(ranges.length);
  let end = 0;
  for (let k = 0; k < ranges.length; k += 2) {
    out[k] = ranges[k]! - end;
    out[k + 1] = ranges[k + 1]!;
    end = ranges[k]! + ranges[k + 1]!;
  }
  return out;
}

function fromGaps(gaps: number[]): number[] {
  const out = new Array<number>(gaps.length);
  let end = 0;
  for (let k = 0; k < gaps.length; k += 2) {
    out[k] = end + gaps[k]!;
    out[k + 1] = gaps[k + 1]!;
    end = out[k]! + out[k + 1]!;
  }
  return out;
}
