/**
 * What pagewarm does when the running Node no longer provides an internal it
 * relies on (the socket hold of ../send/hold, the order in which
 * http.ServerResponse writes its headers): the call falls back to copying
 * through public API, and the process is told once per missing internal.
 */

const told = new Set<string>();

/**
 * Emits one process warning (code `PAGEWARM_NODE_INTERNALS`) the first time
 * `internal` is found missing or changed on this thread; later calls are silent.
 * @param internal What was relied on, as it reads in the warning.
 * @param fallback What pagewarm does instead.
 */
export function warnInternals(internal: string, fallback: string): void {
  if (told.has(internal)) return;
  told.add(internal);
  process.emitWarning(
    `pagewarm: ${internal} is not as pagewarm relies on in Node ${process.version}; ${fallback}. ` +
      'Please report this with the Node version.',
    { code: 'PAGEWARM_NODE_INTERNALS' },
  );
}
