// The pool of reused pieces behind the copying paths (lib/core/piece-pool.ts):
// what is taken back and what is not. That the copying paths give their
// pieces back only once written, with every byte exact under concurrency,
// is checked where they run: test/http.test.ts (HTTPS, wrapped responses).
import t from 'tap';
import { PIECE_BYTES, MAX_KEPT, givePiece, keptPieces, takePiece } from '../lib/core/piece-pool';

/** Empties the pool (test order must not matter). */
function drain(): void {
  while (keptPieces() > 0) takePiece(1);
}

t.test('a piece given back is the next one taken', async (t) => {
  drain();
  const a = takePiece(1000);
  t.equal(a.length, 1000, 'the size asked for');
  t.equal(a.buffer.byteLength, PIECE_BYTES, 'on a whole piece');
  a.fill(7);
  givePiece(a.subarray(10, 20)); // any view of it
  t.equal(keptPieces(), 1);
  const b = takePiece(PIECE_BYTES);
  t.equal(b.buffer, a.buffer, 'the same memory, reused');
  t.equal(b.length, PIECE_BYTES);
  t.equal(keptPieces(), 0);
  t.not(takePiece(5).buffer, b.buffer, 'a piece in use is never handed out twice');
});

t.test('only its own pieces are taken back, once each, at most MAX_KEPT', async (t) => {
  drain();
  givePiece(Buffer.alloc(PIECE_BYTES));
  givePiece(Buffer.allocUnsafe(100)); // from Node's shared pool
  givePiece(Buffer.allocUnsafeSlow(PIECE_BYTES));
  t.equal(keptPieces(), 0, "a caller's buffers are never kept");
  const c = takePiece(10);
  givePiece(c);
  givePiece(c);
  t.equal(keptPieces(), 1, 'given back twice: kept once');
  drain();
  const taken = Array.from({ length: MAX_KEPT + 5 }, () => takePiece(PIECE_BYTES));
  for (const x of taken) givePiece(x);
  t.equal(keptPieces(), MAX_KEPT, `at most ${MAX_KEPT} kept (${(MAX_KEPT * PIECE_BYTES) >> 20} MiB); the rest are left to the GC`);
  t.equal(new Set(taken.map((x) => x.buffer)).size, taken.length, 'every piece taken while others were in use was its own');
});

t.test('sizes outside 0..PIECE_BYTES are a RangeError', async (t) => {
  t.equal(takePiece(0).length, 0);
  for (const bad of [-1, PIECE_BYTES + 1, 1.5, Number.NaN, Infinity]) {
    t.throws(() => takePiece(bad), RangeError, String(bad));
  }
});
