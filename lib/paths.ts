/**
 * Confinement of real paths to a root, shared by serveFile (lib/http.ts)
 * and the fallback's revalidate (lib/fallback.ts). Nothing here is public API.
 */
import { isAbsolute, sep } from 'node:path';

/** Whether the real path `real` is `realRoot` itself or lies below it. */
export function inside(real: string, realRoot: string): boolean {
  if (!isAbsolute(real)) return false; // "(deleted)" names, anonymous inodes
  return real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
}
