/**
 * Content-Type by file extension: a small table of the types a static file
 * server meets most, not a full MIME database.
 */
import { extname } from 'node:path';

const UTF8 = '; charset=utf-8';

const TYPES: Readonly<Record<string, string>> = {
  // text
  '.html': `text/html${UTF8}`,
  '.htm': `text/html${UTF8}`,
  '.css': `text/css${UTF8}`,
  '.js': `text/javascript${UTF8}`,
  '.mjs': `text/javascript${UTF8}`,
  '.cjs': `text/javascript${UTF8}`,
  '.json': `application/json${UTF8}`,
  '.map': `application/json${UTF8}`,
  '.webmanifest': `application/manifest+json${UTF8}`,
  '.txt': `text/plain${UTF8}`,
  '.log': `text/plain${UTF8}`,
  '.md': `text/markdown${UTF8}`,
  '.csv': `text/csv${UTF8}`,
  '.xml': `application/xml${UTF8}`,
  '.yaml': `application/yaml${UTF8}`,
  '.yml': `application/yaml${UTF8}`,
  '.svg': `image/svg+xml${UTF8}`,
  // images
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/vnd.microsoft.icon',
  '.bmp': 'image/bmp',
  // fonts
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  // audio and video
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.oga': 'audio/ogg',
  '.wav': 'audio/wav',
  '.flac': 'audio/flac',
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.webm': 'video/webm',
  '.ogv': 'video/ogg',
  '.mov': 'video/quicktime',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t', // HLS segments, as mime-db has it (not TypeScript)
  // archives and binaries
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.zst': 'application/zstd',
  '.xz': 'application/x-xz',
  '.bz2': 'application/x-bzip2',
  '.7z': 'application/x-7z-compressed',
  '.iso': 'application/x-iso9660-image',
  '.bin': 'application/octet-stream',
};

/** The type served when the extension is not in the table. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/**
 * The Content-Type for a file name or path, by its extension (case
 * insensitive); text types carry `; charset=utf-8`. Unknown extensions, and
 * names without one, give `application/octet-stream`. Pure, any thread.
 *
 * @example contentType('/srv/www/index.html') // 'text/html; charset=utf-8'
 */
export function contentType(path: string): string {
  const ext = extname(path).toLowerCase();
  return Object.prototype.hasOwnProperty.call(TYPES, ext) ? TYPES[ext] : DEFAULT_CONTENT_TYPE;
}
