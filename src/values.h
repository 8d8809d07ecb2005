// The JS values pagewarm's calls return: every function that turns a C++
// result into a JS value is declared here and defined in values.cc. They
// build plain objects (the TypeScript layer gives them their final shape,
// lib/core/errors.ts for failures) and run on the JS thread only.
#pragma once
#include <napi.h>

#include <cstdint>

#include <vector>

#include "files.h"
#include "pool.h"
#include "residency.h"
#include "stats.h"
#include "sys_result.h"

namespace pagewarm {

// A byte count or size as a Number (exact: every count is below 2^53).
Napi::Value CountValue(Napi::Env env, int64_t n);

// A failure: { errno (positive), syscall }.
Napi::Value SysErrorValue(Napi::Env env, const SysResult& r);
// A cancelled operation's reason: { errno: ECANCELED, syscall, aborted: true }.
Napi::Value CancelledValue(Napi::Env env, const char* syscall);
// Adds bytesSent to a send's failure reason, which is returned.
Napi::Value WithBytesSent(Napi::Value reason, int64_t sent);

// residency(): { bytes, pages, resident, dirty, writeback, evicted,
// recentlyEvicted, source }, null where the source cannot tell.
Napi::Value ResidencyValue(Napi::Env env, const Residency& r);

// files(): { data, syscalls, ranges }. data: Float64Array, kFileOutcomeFields
// numbers per file: err (0, errno, -1 skipped as too large, -2 changed since
// the snapshot), size, bytes, dev, ino high 32 bits, ino low 32 bits, pages,
// resident before, resident after (-1: the kernel would not say), source (0
// cachestat, 1 mincore, 2 unknown), mtime seconds, mtime nanoseconds, bytes
// read from the disk, stopped by the budget (1/0), resident ranges (pairs in
// `ranges`, in file order). syscalls: the failed call's name at a failed
// file's index. ranges: every file's (first page, pages) pairs, one after
// the other.
constexpr int kFileOutcomeFields = 15;
Napi::Value FileOutcomesValue(Napi::Env env, const std::vector<FileOutcome>& outcomes);

// stats(): the process-wide counters, the pool's state and its chunk size.
Napi::Value StatsValue(Napi::Env env, const StatsCounters& c, const PoolStats& p,
                       int64_t chunk_size);

// capabilities(): { cachestat, pageSize, zeroCopySend, nowaitReads }.
Napi::Value CapabilitiesValue(Napi::Env env, bool cachestat, int64_t page_size);

}  // namespace pagewarm
