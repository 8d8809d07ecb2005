#include "residency.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#ifndef __NR_cachestat
#define __NR_cachestat 451  // same number on every architecture
#endif

namespace pagewarm {
namespace {

struct CachestatRange {
  uint64_t off;
  uint64_t len;
};
struct CachestatInfo {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

// 1: present, 0: not probed yet, -1: absent (or refused: see HaveCachestat).
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

// Whether CAP_FOWNER is in this thread's effective set (capget(2): no
// libcap). Not euid 0: a rootless container's root, or a process that
// dropped the capability, is uid 0 without it.
bool HaveFowner() {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[CAP_FOWNER / 32].effective & (1u << (CAP_FOWNER % 32))) != 0;
}

// Whether this process's user namespace is the initial one (every uid and
// gid mapped), where capable_wrt_inode_uidgid() reduces to the capability.
bool InitialUserNamespace() {
  static const bool initial = [] {
    FILE* f = fopen("/proc/self/uid_map", "re");
    if (f == nullptr) return false;
    unsigned long long inside = 1, outside = 1, count = 0;
    int n = fscanf(f, "%llu %llu %llu", &inside, &outside, &count);
    bool more = fgetc(f) != EOF && fscanf(f, "%llu", &inside) == 1;
    fclose(f);
    return n == 3 && inside == 0 && outside == 0 && count == 4294967295ULL && !more;
  }();
  return initial;
}

// Mirrors the kernel's can_do_mincore() (mm/mincore.c) for a file mapping:
// inode_owner_or_capable() (fsuid owns the inode, or CAP_FOWNER with the
// inode's uid and gid mapped in our namespace) or
// file_permission(file, MAY_WRITE) == 0, which is the inode's permission to
// write for our fsuid, fsgid, groups and capabilities (CAP_DAC_OVERRIDE),
// not how the descriptor was opened. faccessat(AT_EACCESS) on the
// descriptor's /proc link asks the same inode_permission() with the same
// credentials; it also refuses a read-only mount, which only ever turns a
// truthful answer into "unknown", never the reverse. Without cachestat this
// check is the only thing between a caller and mincore's "all resident" lie.
bool MincoreTellsTruth(const FdRef& file) {
  uid_t fsuid = static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1)));  // reads it, changes nothing
  if (fsuid == file.uid()) return true;
  if (HaveFowner() && InitialUserNamespace()) return true;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", file.fd());
  return faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0;
}

SysResult MincoreResidency(const FdRef& file, int64_t offset, int64_t length, Residency* out) {
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
    // A kernel with cachestat checks the descriptor first and says EBADF for
    // -1. Anything else (ENOSYS, or EPERM from a seccomp filter that refuses
    // unknown system calls, as container runtimes' default profiles do)
    // means cachestat cannot answer here: use mincore instead.
    int rc = Cachestat(-1, 0, 1, &cs);
    state = (rc != 0 && errno == EBADF) ? 1 : -1;
    cachestat_state.store(state, std::memory_order_relaxed);
  }
  return state == 1;
}

SysResult QueryResidency(const FdRef& file, int64_t offset, int64_t length, Residency* out) {
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

SysResult ResidentRanges(const FdRef& file, std::vector<int64_t>* ranges, ResidencySource* source) {
  *source = ResidencySource::kUnknown;
  int64_t ps = PageSize();
  int64_t size = file.size();
  int64_t total_pages = (size + ps - 1) / ps;
  if (total_pages == 0) {
    if (MincoreTellsTruth(file)) *source = ResidencySource::kMincore;
    return SysResult::Ok(0);
  }
  // One cachestat answers for a file wholly resident or wholly not (most of
  // them), without a mapping; mincore reads the pages of the rest.
  if (HaveCachestat()) {
    CachestatInfo cs;
    if (Cachestat(file.fd(), 0, size, &cs) != 0) {
      if (errno == EPERM) return SysResult::Ok(0);  // not told: unknown
      return SysResult::Fail(errno, "cachestat");
    }
    int64_t cached = static_cast<int64_t>(cs.nr_cache);
    if (cached == 0 || cached >= total_pages) {
      *source = ResidencySource::kMincore;  // page-exact all the same
      if (cached > 0) {
        ranges->push_back(0);
        ranges->push_back(total_pages);
      }
      return SysResult::Ok(0);
    }
  }
  if (!MincoreTellsTruth(file)) return SysResult::Ok(0);
  *source = ResidencySource::kMincore;
  int64_t window_pages = kMincoreWindow / ps;
  std::vector<unsigned char> vec(static_cast<size_t>(std::min(window_pages, total_pages)));
  int64_t run_start = -1;  // the first page of the run of resident pages being read
  for (int64_t first = 0; first < total_pages; first += window_pages) {
    int64_t pages = std::min(window_pages, total_pages - first);
    int64_t span = std::min(pages * ps, size - first * ps);
    void* addr = mmap(nullptr, span, PROT_READ, MAP_SHARED, file.fd(), first * ps);
    if (addr == MAP_FAILED) return SysResult::Fail(errno, "mmap");
    int rc = mincore(addr, span, vec.data());
    int err = errno;
    munmap(addr, span);
    if (rc != 0) return SysResult::Fail(err, "mincore");
    for (int64_t i = 0; i < pages; i++) {
      bool resident = (vec[i] & 1) != 0;
      if (resident && run_start < 0) run_start = first + i;
      if (!resident && run_start >= 0) {
        ranges->push_back(run_start);
        ranges->push_back(first + i - run_start);
        run_start = -1;
      }
    }
  }
  if (run_start >= 0) {
    ranges->push_back(run_start);
    ranges->push_back(total_pages - run_start);
  }
  return SysResult::Ok(0);
}

bool FullyResident(int fd, int64_t offset, int64_t length) {
  if (offset < 0 || length <= 0 || !HaveCachestat()) return false;
  CachestatInfo cs;
  if (Cachestat(fd, offset, length, &cs) != 0) return false;
  return static_cast<int64_t>(cs.nr_cache) >= PagesIn(offset, length);
}

bool UptodateNow(int fd, int64_t offset, int64_t length) {
  if (offset < 0 || length <= 0) return false;
  // The bytes land in one scratch buffer, repeated in every iovec: only the
  // kernel's answer matters, and the copy stays in this CPU's cache.
  constexpr size_t kScratch = 64 << 10;
  constexpr int kIovecs = 64;  // up to 4 MiB a call
  thread_local std::unique_ptr<char[]> scratch;
  if (!scratch) scratch.reset(new char[kScratch]);
  struct iovec iov[kIovecs];
  int64_t done = 0;
  while (done < length) {
    int count = 0;
    int64_t asked = 0;
    for (; asked < length - done && count < kIovecs; count++) {
      int64_t left = length - done - asked;
      size_t n = left < static_cast<int64_t>(kScratch) ? static_cast<size_t>(left) : kScratch;
      iov[count].iov_base = scratch.get();
      iov[count].iov_len = n;
      asked += static_cast<int64_t>(n);
    }
    ssize_t n = preadv2(fd, iov, count, offset + done, RWF_NOWAIT);
    if (n < 0 && errno == EINTR) continue;
    // EAGAIN (the first page is not readable without waiting), a short count
    // (a later one is not, or the file shrank), EOPNOTSUPP (no non-blocking
    // reads on this file system), anything else: not known to be ready.
    if (n < asked) return false;
    done += n;
  }
  return true;
}

bool ReadableWithoutWaiting(int fd, int64_t offset, int64_t length) {
  return FullyResident(fd, offset, length) && UptodateNow(fd, offset, length);
}

int64_t ThreadReadBytes() {
  // getrusage's ru_inblock is the thread's read_bytes of /proc/thread-self/io
  // in 512-byte units, without a descriptor. It reads 0 where the kernel
  // keeps no such accounting (no /proc/self/io then): asked once.
  static const bool accounted = access("/proc/self/io", F_OK) == 0;
  if (!accounted) return -1;
  struct rusage usage;
  if (getrusage(RUSAGE_THREAD, &usage) != 0) return -1;
  return static_cast<int64_t>(usage.ru_inblock) * 512;
}

int64_t MissingBytes(const FdRef& file, int64_t offset, int64_t length) {
  if (length <= 0) return 0;
  Residency r;
  if (!QueryResidency(file, offset, length, &r).ok() || r.source == ResidencySource::kUnknown) return -1;
  return NotResident(r);
}

int64_t NotResident(int64_t bytes, int64_t pages, int64_t resident) {
  if (resident < 0) return bytes;
  return std::max<int64_t>(0, std::min(bytes, (pages - resident) * PageSize()));
}

}  // namespace pagewarm
