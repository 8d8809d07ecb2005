// Page-cache residency of a byte range: cachestat(2) where the kernel has it
// (Linux >= 6.5), else mincore(2) over a bounded temporary mapping.
//
// Kernels since 5.2 answer only for callers that could write the file (its
// owner, a writer, or CAP_SYS_ADMIN): cachestat fails with EPERM and mincore
// pretends every page is resident. Both cases come back as kUnknown, never as
// a claim of residency.
#pragma once
#include <cstdint>
#include "file_ref.h"
#include "sys_result.h"

namespace pagewarm {

enum class ResidencySource { kCachestat = 0, kMincore = 1, kUnknown = 2 };

struct Residency {
  int64_t bytes = 0;            // the range, clamped to the file's size
  int64_t pages = 0;            // pages the range touches
  int64_t resident = 0;         // of those, in the page cache
  int64_t dirty = -1;           // cachestat only; -1 when not known
  int64_t writeback = -1;
  int64_t evicted = -1;
  int64_t recently_evicted = -1;
  ResidencySource source = ResidencySource::kUnknown;
};

int64_t PageSize();

// Fills *out for [offset, offset + length) of file, clamped to its size.
SysResult QueryResidency(const FileRef& file, int64_t offset, int64_t length,
                         Residency* out);

// True only when cachestat positively reports every page of the (non-empty,
// in-bounds) range resident. Cheap: about 30 ns a page.
bool FullyResident(int fd, int64_t offset, int64_t length);

// Whether this kernel has cachestat(2) (probed once, then cached).
bool HaveCachestat();

}  // namespace pagewarm
