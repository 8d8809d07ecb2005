// Page-cache residency of a byte range: cachestat(2) where the kernel has it
// (Linux >= 6.5), else mincore(2) over a bounded temporary mapping.
//
// Kernels since 5.2 answer only for callers that own the file (or hold
// CAP_FOWNER over it) or may write to it by its permissions (how the
// descriptor was opened does not matter): otherwise cachestat fails with
// EPERM and mincore pretends every page is resident. Both cases come back as
// kUnknown, never as a claim of residency.
#pragma once
#include <cstdint>
#include <vector>
#include "fd_ref.h"
#include "sys_result.h"

namespace pagewarm {

enum class ResidencySource { kCachestat = 0, kMincore = 1, kUnknown = 2 };

struct Residency {
  int64_t bytes = 0;     // the range, clamped to the file's size
  int64_t pages = 0;     // pages the range touches
  int64_t resident = 0;  // of those, in the page cache
  int64_t dirty = -1;    // cachestat only; -1 when not known
  int64_t writeback = -1;
  int64_t evicted = -1;
  int64_t recently_evicted = -1;
  ResidencySource source = ResidencySource::kUnknown;
};

int64_t PageSize();

// Fills *out for [offset, offset + length) of file, clamped to its size.
SysResult QueryResidency(const FdRef& file, int64_t offset, int64_t length, Residency* out);

// True only when cachestat positively reports every page of the (non-empty,
// in-bounds) range resident. Cheap: about 30 ns a page.
//
// Resident is not readable: cachestat (like mincore) counts a page from the
// moment its read is submitted, while the read is still in flight. Reading
// such a page waits for the disk on the folio lock. Code that must not wait
// (the JS thread) asks ReadableWithoutWaiting() instead.
bool FullyResident(int fd, int64_t offset, int64_t length);

// True only when every byte of the (non-empty, in-bounds) range can be read
// right now without waiting for the disk: preadv2(RWF_NOWAIT) of the range
// into a scratch buffer returns all of it, so no page is missing and none
// has a read still in flight (the kernel answers EAGAIN, or a short count,
// for a page that is not uptodate). It copies the range: keep it for small
// ranges. A page reclaimed right after the answer can still make the
// caller's own read wait; nothing closes that window.
bool UptodateNow(int fd, int64_t offset, int64_t length);

// FullyResident() (cheap, rules out most cold ranges) and then UptodateNow().
bool ReadableWithoutWaiting(int fd, int64_t offset, int64_t length);

// The resident pages of the whole file, page by page: (first page, pages)
// pairs appended to *ranges, in order, from mincore(2) over bounded mappings.
// *source is kMincore, or kUnknown (nothing appended) where the kernel would
// not tell this caller the truth (see QueryResidency).
SysResult ResidentRanges(const FdRef& file, std::vector<int64_t>* ranges, ResidencySource* source);

// Whether this kernel has cachestat(2) (probed once, then cached).
bool HaveCachestat();

}  // namespace pagewarm
