/**
 * pagewarm: keep disk reads off Node's event loop and serve file bytes
 * without copying them through JavaScript.
 */
export { prepareForRead, prepareForReadSync, type PrepareOptions } from './core/warm';
export { warmFile, type WarmFileOptions } from './files/warm-file';
export { residency, residencySync, evict, advise, type Residency, type Advice } from './core/residency';
export { warmFiles, evictFiles, filesResidency, type FilesOptions, type FilesProgress, type FilesResult, type FileFailure, type WarmFilesResult, type EvictFilesResult, type FilesResidencyResult } from './files/files';
export {
  snapshot, restore, keepSnapshot, saveHotSet, loadHotSet, SnapshotError,
  type HotSet, type HotFile, type SnapshotOptions, type RestoreOptions, type RestoreResult, type RestoreSkip,
  type KeepSnapshotOptions, type SnapshotKeeper,
} from './files/hotset';
export { memoryRoom, type MemoryRoom } from './files/budget';
export { eachFile, type EachFileOptions, type FileReport, type FilesOperation } from './files/each';
export { configure, stats, capabilities, type ConfigureOptions, type Stats, type Capabilities } from './core/config';
export { transferTo, transferToSync, type TransferOptions, type TransferError } from './send/transfer';
export { sendfile, sendfileSync, type SendfileOptions, type SendError } from './send/deprecated';
export { sendFile, type SendFileOptions, type SendFileResult, type SendFileError } from './send/socket';
export { sendFileResponse, type SendFileResponseOptions } from './http/response';
export { serveFile, type ServeFileOptions } from './http/serve';
export { serveStatic, type ServeStaticOptions, type NextFunction, type HttpError } from './http/static';
export type { FileStat } from './http/options';
export type { Encoding } from './http/encoding';
export { closeServeFileCache, type ServeFileCacheOptions } from './http/file-cache';
export type { ServeFileResult } from './http/answer';
export { contentType } from './http/mime';
export { AbortError, type SystemError, type CodedError } from './core/errors';
export { CHANNELS as tracingChannels, type TraceContext, type TracedOperation } from './core/trace';
export type { Progress, ProgressOptions } from './core/progress';
export type { RestoreProgress } from './files/hotset';
export type { FileLike } from './core/validate';
