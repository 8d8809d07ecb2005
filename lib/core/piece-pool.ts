/**
 * Reused buffers for the paths that copy file bytes through JavaScript: TLS
 * sockets, the portable fallback, Node's public socket API when its internals
 * are not as relied on, and small resident HTTP bodies.
 *
 * A fresh 256 KiB Buffer per piece is memory outside V8's heap: a fast copy
 * allocates thousands of them a second, and V8 answers that "external memory
 * pressure" with garbage collections on the event loop, as often as the copy
 * allocates. A piece is given back once the write that took it has called
 * back (its bytes are then in the kernel, or encrypted into TLS records), so
 * a steady copy reuses the same few. Responses whose write() middleware
 * replaced get fresh buffers: middleware may keep a piece after calling
 * back. Per thread: each worker loads its own copy of this module.
 */

/** The size of every pooled piece: the pieces the copying paths read and write. */
export const PIECE_BYTES = 256 << 10;

/** Pieces kept for reuse at most (4 MiB); more in use at once are allocated, and left to the GC when given back. */
export const MAX_KEPT = 16;

const kept: ArrayBuffer[] = [];
/** The backing stores this pool made: only those are taken back, so a caller's own buffer never is. */
const ours = new WeakSet<ArrayBuffer>();

/**
 * A buffer of `size` bytes (0..PIECE_BYTES) for one piece, from the pool.
 * Give it back with {@link givePiece} only once nothing will read
 * it again (a write's callback has run); a piece never given back is
 * simply collected.
 * @throws RangeError when `size` is not an integer in 0..PIECE_BYTES (a caller's bug).
 */
export function takePiece(size: number): Buffer {
  if (!(Number.isInteger(size) && size >= 0 && size <= PIECE_BYTES)) throw new RangeError(`takePiece: size ${size} is outside 0..${PIECE_BYTES}`);
  let store = kept.pop();
  if (store === undefined) {
    store = Buffer.allocUnsafeSlow(PIECE_BYTES).buffer as ArrayBuffer;
    ours.add(store);
  }
  return Buffer.from(store, 0, size);
}

/**
 * Returns a buffer from {@link takePiece} (or any view of it) to the
 * pool; anything else, and pieces beyond MAX_KEPT, are ignored. Giving
 * back the same piece twice is ignored too.
 */
export function givePiece(buf: Buffer): void {
  const store = buf.buffer as ArrayBuffer;
  if (!ours.has(store) || kept.length >= MAX_KEPT || kept.includes(store)) return;
  kept.push(store);
}

/** How many pieces wait for reuse now (for tests). @internal */
export function keptPieces(): number {
  return kept.length;
}
