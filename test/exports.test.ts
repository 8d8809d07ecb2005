// The public surface: every runtime export of the package is documented in
// docs/api.md under its own heading, and every public type is exported from
// the entry point (this file's type imports fail `npm run typecheck` if one
// is not), and listed in docs/api.md's "Exported types".
import t from 'tap';
import * as fs from 'node:fs';
import { join } from 'node:path';
import * as pagewarm from '../lib/index';
import type {
  FileLike,
  PrepareOptions,
  WarmFileOptions,
  Residency,
  Advice,
  ConfigureOptions,
  Stats,
  Capabilities,
  TransferOptions,
  TransferError,
  SendFileOptions,
  SendFileResult,
  SendFileError,
  SendFileResponseOptions,
  ServeFileOptions,
  ServeFileCacheOptions,
  ServeFileResult,
  SystemError,
  CodedError,
  FilesOptions,
  EachFileOptions,
  FilesProgress,
  FilesResult,
  FileFailure,
  WarmFilesResult,
  EvictFilesResult,
  FilesResidencyResult,
  FileReport,
  FilesOperation,
  HotSet,
  HotFile,
  SnapshotOptions,
  RestoreOptions,
  RestoreResult,
  RestoreSkip,
  KeepSnapshotOptions,
  SnapshotKeeper,
  MemoryRoom,
  TraceContext,
  TracedOperation,
  Progress,
  ProgressOptions,
  RestoreProgress,
} from '../lib/index';

const api = fs.readFileSync(join(__dirname, '..', 'docs', 'api.md'), 'utf8');

t.test('every runtime export has a heading in docs/api.md', async (t) => {
  const headings = api.split('\n').filter((line) => line.startsWith('### '));
  for (const name of Object.keys(pagewarm)) {
    t.ok(headings.some((h) => h.includes(`\`${name}(`) || h.includes(`\`${name}\``)), `${name} is documented`);
  }
});

t.test('every public type is exported and listed in docs/api.md', async (t) => {
  const listed = api.slice(api.indexOf('## Exported types'));
  const types = [
    'FileLike', 'PrepareOptions', 'WarmFileOptions', 'FilesOptions', 'EachFileOptions', 'FilesProgress', 'FilesResult',
    'FileFailure', 'WarmFilesResult', 'EvictFilesResult', 'FilesResidencyResult', 'FileReport', 'FilesOperation', 'HotSet', 'HotFile', 'SnapshotOptions', 'RestoreOptions', 'RestoreResult', 'RestoreSkip',
    'KeepSnapshotOptions', 'SnapshotKeeper', 'MemoryRoom', 'Residency', 'Advice', 'ConfigureOptions', 'Stats',
    'Capabilities', 'TransferOptions', 'TransferError', 'SendFileOptions', 'SendFileResult', 'SendFileError',
    'SendFileResponseOptions', 'ServeFileOptions', 'ServeFileCacheOptions', 'ServeFileResult', 'SystemError',
    'CodedError', 'TraceContext', 'TracedOperation', 'Progress', 'ProgressOptions', 'RestoreProgress',
  ];
  for (const name of types) t.ok(listed.includes(`\`${name}\``), `${name} is listed`);
  // The cache options reach serveFile as they are typed.
  const cache: ServeFileCacheOptions = { maxEntries: 16, maxBytes: 1 << 20 };
  const options: ServeFileOptions = { root: '/srv', cache };
  t.same(options.cache, cache);
  // Every type name above is used, so a missing export fails the type check.
  type All = [FileLike, PrepareOptions, WarmFileOptions, FilesOptions, EachFileOptions, FilesProgress, FilesResult,
    FileFailure, WarmFilesResult, EvictFilesResult, FilesResidencyResult, FileReport, FilesOperation, HotSet, HotFile, SnapshotOptions, RestoreOptions, RestoreResult, RestoreSkip,
    KeepSnapshotOptions, SnapshotKeeper, MemoryRoom, Residency, Advice, ConfigureOptions, Stats, Capabilities,
    TransferOptions, TransferError, SendFileOptions, SendFileResult, SendFileError, SendFileResponseOptions,
    ServeFileOptions, ServeFileCacheOptions, ServeFileResult, SystemError, CodedError, TraceContext, TracedOperation,
    Progress, ProgressOptions, RestoreProgress];
  const count: All['length'] = 43;
  t.equal(count, types.length, 'the list and the imports agree');
});
