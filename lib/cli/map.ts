/**
 * `pagewarm stat --map`: a file's residency drawn one character per bucket
 * of pages, as vmtouch -v and pcstat's histogram draw it.
 */

/** What each character of a map means, in order of residency. */
export const MAP_LEGEND = "'#' every page resident, '+' half or more, '.' some, ' ' none";

/**
 * The map of a file of `pages` pages whose resident pages are the
 * (first page, pages) pairs `ranges`, in `width` characters (fewer when
 * the file has fewer pages): each character covers pages/width pages.
 */
export function residencyMap(ranges: readonly number[], pages: number, width: number): string {
  const columns = Math.max(1, Math.min(width, pages));
  if (pages <= 0) return '';
  const resident = new Float64Array(columns);
  const per = pages / columns;
  for (let k = 0; k + 1 < ranges.length; k += 2) {
    const first = ranges[k]!;
    const end = Math.min(pages, first + ranges[k + 1]!);
    // Spread the run over the buckets it overlaps.
    const last = Math.min(columns - 1, Math.ceil(end / per) - 1);
    for (let b = Math.min(columns - 1, Math.floor(first / per)); b <= last; b++) {
      resident[b]! += Math.max(0, Math.min(end, (b + 1) * per) - Math.max(first, b * per));
    }
  }
  let out = '';
  for (let b = 0; b < columns; b++) {
    const size = Math.min(pages, (b + 1) * per) - b * per;
    const f = resident[b]! / size;
    out += f >= 1 - 1e-9 ? '#' : f >= 0.5 ? '+' : f > 0 ? '.' : ' ';
  }
  return out;
}

/** The width of maps on this output: the terminal's (less room for the brackets), or 60 columns. */
export function mapWidth(columns: number | undefined): number {
  return columns !== undefined && columns > 12 ? columns - 4 : 60;
}

/** Resident (first page, pages) pairs as [offset, length] byte ranges, clamped to the file's `size`. */
export function byteRanges(ranges: readonly number[], pageSize: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let k = 0; k + 1 < ranges.length; k += 2) {
    const offset = ranges[k]! * pageSize;
    const length = Math.min(size, (ranges[k]! + ranges[k + 1]!) * pageSize) - offset;
    if (length > 0) out.push([offset, length]);
  }
  return out;
}
