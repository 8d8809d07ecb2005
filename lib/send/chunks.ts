/**
 * Moving a range to the socket chunk by chunk: the next chunks warmed ahead
 * on pagewarm's threads while one is emitted, and dropBehind. Not public API.
 */
import { prepareForRead, warmRange } from '../core/warm';
import type { Meter } from '../core/settle';
import { advise } from '../core/residency';
import { withBytesSent } from './errors';

/** Sends `n` bytes at `pos`; resolves with the bytes sent. */
export type Emit = (pos: number, n: number) => Promise<number>;
type Outcome = { ok: true; value: number } | { ok: false; error: unknown };

function outcome(p: Promise<number>): Promise<Outcome> {
  return p.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  );
}

/** Page-cache folios are naturally aligned, at most 2 MiB (PMD size) on x86-64. */
const DROP_ALIGN = 2 << 20;

/** Chunks warmed ahead of the one being sent (each warm-up is one pool job). */
const WARM_AHEAD = 2;

/** What {@link sendChunks} sends, and how. */
export interface ChunkPlan {
  /** The source descriptor. */
  fd: number;
  offset: number;
  /** Bytes, or -1 for "to the end of the file". */
  length: number;
  /** Bytes per chunk (stats().chunkSize). */
  chunk: number;
  /** Warm chunks ahead on pagewarm's threads while the current one is emitted. */
  warm: boolean;
  /** Drop sent chunks from the page cache (posix_fadvise DONTNEED) as the send goes. */
  dropBehind: boolean;
  signal: AbortSignal;
  /** Sends `n` bytes at `pos` (zero-copy or copying); resolves with the bytes sent. */
  emit: Emit;
  /** Called after each chunk with the bytes sent so far (refreshes the socket's idle timeout). */
  progress: (sent: number) => void;
  /** Where the warm-ups' figures go (traced or watched sends), else undefined. */
  meter: Meter | undefined;
}

/**
 * Sends the range chunk by chunk; with `warm`, chunks N+1 and N+2 are warmed
 * on pagewarm's threads while chunk N is emitted. Stops at end of file (a short
 * chunk). Rejections carry the total `bytesSent`.
 */
export async function sendChunks(plan: ChunkPlan): Promise<number> {
  const { fd, offset, length, chunk, warm, dropBehind, signal, emit, progress, meter } = plan;
  const end = length < 0 ? Number.MAX_SAFE_INTEGER : offset + length;
  // Warm-ups of the chunks ahead, in order. Each is settled into an Outcome at
  // once, so one that fails while a chunk is being sent is never an
  // unhandled rejection.
  const warming: Array<Promise<Outcome>> = [];
  let warmedTo = offset;
  const warmAhead = (ahead: number): void => {
    while (warm && warming.length < ahead && warmedTo < end) {
      const n = Math.min(chunk, end - warmedTo);
      warming.push(outcome(meter ? warmRange(fd, warmedTo, n, signal, meter, undefined) : prepareForRead(fd, warmedTo, n, { signal })));
      warmedTo += n;
    }
  };
  let sent = 0;
  let pos = offset;
  let dropped = offset;
  warmAhead(1); // the first chunk alone: its bytes leave as soon as it is warm
  while (pos < end) {
    const n = Math.min(chunk, end - pos);
    if (warm) {
      const w = await warming.shift()!;
      if (!w.ok) throw withBytesSent(w.error, sent);
      if (w.value === 0) break; // at or past the end of the file
      warmAhead(WARM_AHEAD); // chunks N+1.. warm while chunk N is sent
    }
    let got: number;
    try {
      got = await emit(pos, n);
    } catch (err) {
      throw withBytesSent(err, sent);
    }
    sent += got;
    pos += got;
    progress(sent);
    if (dropBehind) {
      // The chunk before this one has most likely left the socket buffer.
      // Boundaries are aligned: DONTNEED skips a large folio that straddles
      // the end of its range, and would then skip it on both sides.
      const upTo = Math.floor((pos - chunk) / DROP_ALIGN) * DROP_ALIGN;
      if (upTo > dropped) {
        advise(fd, dropped, upTo - dropped, 'dontneed');
        dropped = upTo;
      }
    }
    if (got < n) break;
  }
  // Once more over the whole range, for the folios around the boundaries
  // (never with length 0: that would mean "to the end of the file").
  if (dropBehind && pos > offset) advise(fd, offset, pos - offset, 'dontneed');
  return sent;
}
