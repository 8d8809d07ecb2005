// Page-cache residency of a byte range: cachestat(2) where the kernel has it
// (Linux >= 6.5), else mincore(2) over a bounded temporary mapping.
//
// Kernels since 5.2 answer only for callers that own the file (or hold
// CAP_FOWNER over it) or may write to it by its permissions (how the
// descriptor was opened does not matter): otherwise cachestat fails with
// EPERM and mincore pretends every page is resident. Both cases come back as
// kUnknown, never as a claim of residency.
#pragma once
#include <algorithm>
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

// Bytes of a range of `bytes` bytes over `pages` pages of which `resident`
// are resident that are not: the bytes a read of it takes from the disk (the
// whole range when residency is unknown, resident < 0).
int64_t NotResident(int64_t bytes, int64_t pages, int64_t resident);

// Bytes of [offset, offset + length) not in the page cache now, or -1 when
// that cannot be asked (a failure; residency unknown to this process).
int64_t MissingBytes(const FdRef& file, int64_t offset, int64_t length);

// Bytes the calling thread has caused to be read from storage so far (its
// reads and the readahead they started: getrusage(RUSAGE_THREAD)'s
// ru_inblock, the read_bytes of /proc/thread-self/io), or -1 where the kernel
// does not account them.
int64_t ThreadReadBytes();

// What a read of [offset, offset + length) (`read_fn`) took from the disk:
// the thread's read bytes before and after it, readahead it started past
// the range included. Without that accounting: the missing bytes of the
// range and as much again after it (what readahead may bring), asked before
// and after the read (pages another reader brings in meanwhile count too).
template <typename Read>
int64_t FromDiskDuring(const FdRef& file, int64_t offset, int64_t length, Read read_fn) {
  int64_t io_before = ThreadReadBytes();
  if (io_before >= 0) {
    read_fn();
    int64_t io_after = ThreadReadBytes();
    return io_after >= io_before ? io_after - io_before : 0;
  }
  int64_t window = std::min(file.size() - offset, 2 * length);
  int64_t before = MissingBytes(file, offset, window);
  read_fn();
  if (before <= 0) return 0;
  int64_t after = MissingBytes(file, offset, window);
  return after < 0 ? 0 : std::max<int64_t>(0, before - after);
}

// NotResident for a range QueryResidency described.
inline int64_t NotResident(const Residency& r) {
  return NotResident(r.bytes, r.pages, r.source == ResidencySource::kUnknown ? -1 : r.resident);
}

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
