/**
 * AbortSignal plumbing shared by calls that wait on a caller's signal.
 * Nothing here is public API.
 */

/**
 * Waiters on each AbortSignal, behind one 'abort' listener per signal: a
 * signal shared by many concurrent responses (one for a whole server's
 * shutdown) would otherwise collect a listener per response and warn
 * (MaxListenersExceededWarning) past ten.
 */
const abortWaiters = new WeakMap<AbortSignal, { waiters: Set<() => void>; fire: () => void }>();

/**
 * Calls `fn` once when `signal` aborts (on a microtask if it already has);
 * returns the function that stops waiting.
 */
export function whenAborted(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    let waiting = true;
    queueMicrotask(() => {
      if (waiting) fn();
    });
    return () => {
      waiting = false;
    };
  }
  let entry = abortWaiters.get(signal);
  if (!entry) {
    const waiters = new Set<() => void>();
    const fire = (): void => {
      abortWaiters.delete(signal);
      for (const waiter of [...waiters]) waiter();
      waiters.clear();
    };
    entry = { waiters, fire };
    abortWaiters.set(signal, entry);
    signal.addEventListener('abort', fire, { once: true });
  }
  const { waiters, fire } = entry;
  const waiter = (): void => fn();
  waiters.add(waiter);
  return () => {
    if (!waiters.delete(waiter) || waiters.size > 0) return;
    if (abortWaiters.get(signal)?.waiters === waiters) abortWaiters.delete(signal);
    signal.removeEventListener('abort', fire);
  };
}

/**
 * A signal of this call's own that follows `signal` (through whenAborted),
 * for a callee that listens on it directly: one listener per call lands on
 * the call's own signal, not on the shared one. `done()` unlinks it.
 */
export function linkedSignal(signal: AbortSignal | undefined): { signal: AbortSignal | undefined; done: () => void } {
  if (!signal) return { signal: undefined, done: () => undefined };
  const own = new AbortController();
  const done = whenAborted(signal, () => own.abort(signal.reason));
  return { signal: own.signal, done };
}
