#include "warm.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <atomic>
#include <memory>

#include "stats.h"

namespace pagewarm {
namespace {

constexpr size_t kReadBufferSize = 1 << 20;

int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }

// Reads into a buffer owned by the calling thread and reused by every
// fallback warm-up that runs on it.
SysResult ReadChunk(int fd, int64_t offset, int64_t length, bool* eof) {
  thread_local std::unique_ptr<char[]> buffer;
  if (!buffer) buffer.reset(new char[kReadBufferSize]);
  int64_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, buffer.get(), Min(length - done, static_cast<int64_t>(kReadBufferSize)),
                      offset + done);
    if (n > 0) {
      done += n;
      continue;
    }
    if (n == 0) {
      *eof = true;
      break;
    }
    if (errno == EINTR) continue;
    return SysResult::Fail(errno, "sendfile");  // the operation's call: warm-ups report sendfile
  }
  return SysResult::Ok(done);
}

// After sendfile said EINVAL: whether a 1-byte read at the same offset
// works, so the EINVAL was about splicing this file, not about the range.
bool SpliceUnsupported(int fd, off_t pos) {
  char byte;
  ssize_t n;
  do {
    n = pread(fd, &byte, 1, pos);
  } while (n < 0 && errno == EINTR);
  return n >= 0;
}

}  // namespace

// Only a descriptor is remembered: a failure (EMFILE on a busy server, say)
// is returned to the warm-up that met it, and the next one tries again.
// Threads that race here each open one; the first kept wins, the rest close.
int NullFd() {
  static std::atomic<int> cached{-1};
  int fd = cached.load(std::memory_order_acquire);
  if (fd >= 0) return fd;
  fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int expected = -1;
  if (!cached.compare_exchange_strong(expected, fd, std::memory_order_acq_rel)) {
    close(fd);
    return expected;
  }
  return fd;
}

SysResult WarmChunk(const FdRef& file, WarmState* state, int64_t offset, int64_t length,
                    bool* eof) {
  StatsCounters& counters = Counters();
  *eof = false;
  if (length <= 0) return SysResult::Ok(0);

  // Every chunk goes through sendfile, resident or not. cachestat (and
  // mincore) count a page from the moment its read is submitted, by us or by
  // any other reader, so "cachestat says resident, skip it" could settle a
  // warm-up before those pages land. splice to /dev/null waits for a page
  // still being read, and costs little for pages already uptodate.
  int64_t done = 0;
  if (!state->read_fallback && !state->mark_accessed) {
    int null_fd = NullFd();
    if (null_fd < 0) return SysResult::Fail(-null_fd, "open");
    while (done < length) {
      off_t pos = offset + done;
      ssize_t n = sendfile(null_fd, file.fd(), &pos, Min(length - done, kMaxIoPerCall));
      if (n > 0) {
        done += n;
        continue;
      }
      if (n == 0) {
        *eof = true;
        break;
      }
      if (errno == EINTR) continue;
      // No splice_read for this file (some FUSE, ZFS, GPFS, overlay set-ups):
      // warm by reading instead, for the rest of this operation. EINVAL is
      // also sendfile's answer to a bad range: it means "no splice" only if
      // a read at the same place works.
      int err = errno;
      if (err == ENOSYS || err == EOPNOTSUPP ||
          (err == EINVAL && SpliceUnsupported(file.fd(), pos))) {
        state->read_fallback = true;
        break;
      }
      return SysResult::Fail(err, "sendfile");
    }
    if (!state->read_fallback) Count(counters.sendfile_chunks);
  }
  if ((state->read_fallback || state->mark_accessed) && !*eof && done < length) {
    SysResult r = ReadChunk(file.fd(), offset + done, length - done, eof);
    if (!r.ok()) return r;
    done += r.value;
    if (state->read_fallback) Count(counters.fallback_reads);
  }
  Count(counters.warmed_bytes, done);
  return SysResult::Ok(done);
}

}  // namespace pagewarm
