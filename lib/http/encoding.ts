/**
 * Choosing a precompressed file for a request (RFC 9110 12.5.3,
 * Accept-Encoding): which of the encodings a server has files for the
 * client accepts, best first. Pure functions.
 */
import { invalidArgType, invalidArgValue } from '../core/errors';

/** The encodings precompressed files may have, and the suffix each file carries. */
export type Encoding = 'br' | 'gzip' | 'zstd';
export const SUFFIX: Record<Encoding, string> = { br: '.br', gzip: '.gz', zstd: '.zst' };
const KNOWN = Object.keys(SUFFIX) as Encoding[];

/**
 * The `precompressed` option: false/undefined (none), true (`['br', 'gzip']`)
 * or a list of encodings in the server's order of preference.
 * @throws TypeError `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE`.
 */
export function toPrecompressed(value: unknown, name = 'options.precompressed'): Encoding[] {
  if (value === undefined || value === false) return [];
  if (value === true) return ['br', 'gzip'];
  if (!Array.isArray(value)) throw invalidArgType(name, 'of type boolean or an array of encodings', value);
  for (const e of value) {
    if (!KNOWN.includes(e)) throw invalidArgValue(name, value, `must list only ${KNOWN.map((k) => `'${k}'`).join(', ')}`);
  }
  return [...new Set(value as Encoding[])];
}

/**
 * The encodings of `offered` that an Accept-Encoding field value accepts,
 * in the client's order of preference (highest q first; ties keep the
 * server's order). A coding is accepted when its own entry, or else `*`,
 * has q > 0; `x-gzip` counts as `gzip`. No field (undefined): none, as the
 * client may not understand any coding (an empty field means the same).
 * Malformed entries are skipped; a q-value that is not a number is q=0.
 */
export function acceptedEncodings(field: string | string[] | undefined, offered: readonly Encoding[]): Encoding[] {
  if (field === undefined || offered.length === 0) return [];
  const q = new Map<string, number>();
  for (const part of (Array.isArray(field) ? field.join(',') : field).split(',')) {
    const [rawName, ...params] = part.split(';');
    let name = rawName!.trim().toLowerCase();
    if (name === '') continue;
    if (name === 'x-gzip') name = 'gzip';
    let weight = 1;
    for (const p of params) {
      const [k, v] = p.split('=').map((s) => s.trim());
      if (k?.toLowerCase() === 'q') weight = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v ?? '') ? Number(v) : 0;
    }
    // A coding listed twice: the more specific duplicate is no more specific; keep the first.
    if (!q.has(name)) q.set(name, weight);
  }
  const star = q.get('*');
  const ranked = offered
    .map((e, i) => ({ e, i, w: q.get(e) ?? star ?? 0 }))
    .filter((x) => x.w > 0)
    .sort((a, b) => b.w - a.w || a.i - b.i);
  return ranked.map((x) => x.e);
}
