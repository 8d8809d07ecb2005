#include "residency.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#ifndef __NR_cachestat
#define __NR_cachestat 451  // same number on every architecture
#endif

namespace pagewarm {
namespace {

struct CachestatRange { uint64_t off; uint64_t len; };
struct CachestatInfo {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

// 1: present, 0: not probed yet, -1: ENOSYS.
std::atomic<int> cachestat_state{0};

constexpr int64_t kMincoreWindow = 64 << 20;  // bytes mapped at once

int Cachestat(int fd, int64_t offset, int64_t length, CachestatInfo* cs) {
  CachestatRange range{static_cast<uint64_t>(offset), static_cast<uint64_t>(length)};
  return static_cast<int>(syscall(__NR_cachestat, fd, &range, cs, 0));
}

int64_t PagesIn(int64_t offset, int64_t length) {
  if (length <= 0) return 0;
  int64_t ps = PageSize();
  return (offset + length + ps - 1) / ps - offset / ps;
}

// Mirrors the kernel's can_do_mincore(): mincore tells the truth only to
// callers that could write the file.
bool MincoreTellsTruth(const FileRef& file) {
  if (file.writable() || geteuid() == 0 || geteuid() == file.uid()) return true;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", file.fd());
  return faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0;
}

SysResult MincoreResidency(const FileRef& file, int64_t offset, int64_t length,
                           Residency* out) {
  int64_t ps = PageSize();
  int64_t start = offset / ps * ps;
  int64_t end = offset + length;
  std::vector<unsigned char> vec(kMincoreWindow / ps);
  for (int64_t pos = start; pos < end; pos += kMincoreWindow) {
    int64_t span = end - pos < kMincoreWindow ? end - pos : kMincoreWindow;
    void* addr = mmap(nullptr, span, PROT_READ, MAP_SHARED, file.fd(), pos);
    if (addr == MAP_FAILED) return SysResult::Fail(errno, "mmap");
    int rc = mincore(addr, span, vec.data());
    int err = errno;
    munmap(addr, span);
    if (rc != 0) return SysResult::Fail(err, "mincore");
    int64_t n = (span + ps - 1) / ps;
    for (int64_t i = 0; i < n; i++) out->resident += vec[i] & 1;
  }
  out->source = ResidencySource::kMincore;
  return SysResult::Ok(out->resident);
}

}  // namespace

int64_t PageSize() {
  static const int64_t size = sysconf(_SC_PAGESIZE);
  return size;
}

bool HaveCachestat() {
  int state = cachestat_state.load(std::memory_order_relaxed);
  if (state == 0) {
    CachestatInfo cs;
    // fd -1 distinguishes "no such syscall" (ENOSYS) from "bad fd" (EBADF).
    int rc = Cachestat(-1, 0, 1, &cs);
    state = (rc != 0 && errno == ENOSYS) ? -1 : 1;
    cachestat_state.store(state, std::memory_order_relaxed);
  }
  return state == 1;
}

SysResult QueryResidency(const FileRef& file, int64_t offset, int64_t length,
                         Residency* out) {
  length = ClampRange(file.size(), offset, length);
  *out = Residency();
  out->bytes = length;
  out->pages = PagesIn(offset, length);

  if (HaveCachestat()) {
    out->source = ResidencySource::kCachestat;
    if (length == 0) {  // cachestat reads len 0 as "to the end of the file"
      out->dirty = out->writeback = out->evicted = out->recently_evicted = 0;
      return SysResult::Ok(0);
    }
    CachestatInfo cs;
    if (Cachestat(file.fd(), offset, length, &cs) != 0) {
      if (errno == EPERM) {
        out->source = ResidencySource::kUnknown;
        return SysResult::Ok(0);
      }
      return SysResult::Fail(errno, "cachestat");
    }
    out->resident = static_cast<int64_t>(cs.nr_cache);
    out->dirty = static_cast<int64_t>(cs.nr_dirty);
    out->writeback = static_cast<int64_t>(cs.nr_writeback);
    out->evicted = static_cast<int64_t>(cs.nr_evicted);
    out->recently_evicted = static_cast<int64_t>(cs.nr_recently_evicted);
    return SysResult::Ok(out->resident);
  }

  if (!MincoreTellsTruth(file)) {
    out->source = ResidencySource::kUnknown;
    return SysResult::Ok(0);
  }
  if (length == 0) {
    out->source = ResidencySource::kMincore;
    return SysResult::Ok(0);
  }
  return MincoreResidency(file, offset, length, out);
}

bool FullyResident(int fd, int64_t offset, int64_t length) {
  if (length <= 0 || !HaveCachestat()) return false;
  CachestatInfo cs;
  if (Cachestat(fd, offset, length, &cs) != 0) return false;
  return static_cast<int64_t>(cs.nr_cache) >= PagesIn(offset, length);
}

}  // namespace pagewarm
