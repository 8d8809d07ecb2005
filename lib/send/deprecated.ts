/**
 * The descriptor-level send's old names, kept for one minor version:
 * `sendfile` and `sendfileSync` differed from `sendFile` only in letter
 * case. Each warns once per process (DeprecationWarning PAGEWARM_DEP0001)
 * and then behaves exactly as transferTo / transferToSync.
 */
import { deprecate } from 'node:util';
import { transferTo, transferToSync, type TransferError, type TransferOptions } from './transfer';

const MESSAGE = 'pagewarm: sendfile() and sendfileSync() are deprecated; use transferTo() and transferToSync(), the same calls under names that cannot be mistaken for sendFile()';

/** @deprecated Use {@link transferTo} (same arguments and results). */
export const sendfile: typeof transferTo = deprecate(
  (...args: Parameters<typeof transferTo>) => transferTo(...args),
  MESSAGE,
  'PAGEWARM_DEP0001',
);

/** @deprecated Use {@link transferToSync} (same arguments and results). */
export const sendfileSync: typeof transferToSync = deprecate(
  (...args: Parameters<typeof transferToSync>) => transferToSync(...args),
  MESSAGE,
  'PAGEWARM_DEP0001',
);

/** @deprecated Use {@link TransferOptions}. */
export type SendfileOptions = TransferOptions;
/** @deprecated Use {@link TransferError}. */
export type SendError = TransferError;
