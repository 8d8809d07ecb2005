/**
 * The broker's log: numbered segment files in one directory
 * (`00000000000000000000.log`, `00000000000000000001.log`, ...). Records are
 * appended to the last (active) segment; a new segment starts when the next
 * record would take the active one past `segmentBytes`.
 *
 * Appends are buffered writes on the calling thread (into the page cache, no
 * fsync), as Kafka's request handlers do; reads go through the descriptors
 * this class keeps open, one per segment.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRecord } from './protocol';

export interface Segment {
  id: number;
  path: string;
  /** Read-only descriptor, open for the life of the log. */
  fd: number;
  /** Bytes committed (appended) so far: FETCH never reads past this. */
  size: number;
}

export interface LogOptions {
  /** Roll to a new segment when the next record would exceed this size. Default 64 MiB. */
  segmentBytes?: number;
}

export function segmentName(id: number): string {
  return `${String(id).padStart(20, '0')}.log`;
}

export class Log {
  readonly dir: string;
  readonly segmentBytes: number;
  private readonly segments = new Map<number, Segment>();
  private active!: Segment;
  private activeWriteFd = -1;

  constructor(dir: string, options: LogOptions = {}) {
    this.dir = dir;
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    if (!Number.isInteger(this.segmentBytes) || this.segmentBytes < 16) throw new RangeError('segmentBytes must be an integer >= 16');
    mkdirSync(dir, { recursive: true });
    const ids = readdirSync(dir).filter((n) => /^\d{20}\.log$/.test(n)).map((n) => Number(n.slice(0, 20))).sort((a, b) => a - b);
    for (const id of ids) this.openSegment(id);
    if (ids.length === 0) this.openSegment(0);
    this.setActive(this.segments.get(ids.length ? ids[ids.length - 1] : 0)!);
  }

  private openSegment(id: number): Segment {
    const path = join(this.dir, segmentName(id));
    const writeFd = openSync(path, 'a');
    closeSync(writeFd); // create it if missing
    const fd = openSync(path, 'r');
    const seg: Segment = { id, path, fd, size: fstatSync(fd).size };
    this.segments.set(id, seg);
    return seg;
  }

  private setActive(seg: Segment): void {
    if (this.activeWriteFd >= 0) closeSync(this.activeWriteFd);
    this.active = seg;
    this.activeWriteFd = openSync(seg.path, 'r+');
  }

  /** Appends a record; returns its segment and the offset where it starts. */
  append(record: Buffer): { segment: number; offset: number } {
    const stored = encodeRecord(record);
    if (this.active.size > 0 && this.active.size + stored.length > this.segmentBytes) {
      this.setActive(this.openSegment(this.active.id + 1));
    }
    const seg = this.active;
    const offset = seg.size;
    let done = 0;
    while (done < stored.length) done += writeSync(this.activeWriteFd, stored, done, stored.length - done, offset + done);
    seg.size += stored.length;
    return { segment: seg.id, offset };
  }

  segment(id: number): Segment | undefined {
    return this.segments.get(id);
  }

  /** Every segment, oldest first. */
  list(): Segment[] {
    return [...this.segments.values()].sort((a, b) => a.id - b.id);
  }

  get activeSegment(): number {
    return this.active.id;
  }

  close(): void {
    if (this.activeWriteFd >= 0) closeSync(this.activeWriteFd);
    this.activeWriteFd = -1;
    for (const s of this.segments.values()) closeSync(s.fd);
    this.segments.clear();
  }
}
