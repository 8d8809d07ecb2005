/**
 * pagewarm: keep disk reads off Node's event loop and serve file bytes
 * without copying them through JavaScript.
 */
export { prepareForRead, prepareForReadSync, warmFile, type PrepareOptions, type WarmFileOptions } from './warm';
export { residency, residencySync, evict, advise, type Residency, type Advice } from './residency';
export { configure, stats, capabilities, type ConfigureOptions, type Stats, type Capabilities } from './config';
export { sendfile, sendfileSync, type SendfileOptions, type SendError } from './send';
export { sendFile, type SendFileOptions, type SendFileResult, type SendFileError } from './socket';
export {
  sendFileResponse,
  serveFile,
  closeServeFileCache,
  type SendFileResponseOptions,
  type ServeFileOptions,
  type ServeFileCacheOptions,
  type ServeFileResult,
} from './http';
export { contentType } from './mime';
export { AbortError, type SystemError, type CodedError } from './errors';
export type { FileLike } from './validate';
