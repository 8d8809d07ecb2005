// Warming: bring a byte range of a file into the page cache without copying
// it to user space, by sendfile(2) to /dev/null. The kernel reads the pages
// into the page cache to splice them, and the null device drops them.
#pragma once
#include <cstdint>

#include "fd_ref.h"
#include "sys_result.h"

namespace pagewarm {

// The per-operation state of one warm-up across its chunks.
struct WarmState {
  // Splice is unsupported: read instead. Starts true when the test-only
  // switch forceReadFallback was on in the environment that made the job.
  bool read_fallback = false;
  // Read (into a reused buffer) instead of splicing, by choice: read(2)
  // marks the pages accessed, as an application's own read would, and
  // splice does not, so pages warmed for later use (restore) are not the
  // first that reclaim takes (kswapd, or proactive reclaim such as DAMON's).
  bool mark_accessed = false;
};

// Warms [offset, offset + length) of file. Returns the bytes covered, which
// is short only at end of file (*eof is then set). Reads every page, resident
// or not, so it returns only once each page is uptodate (a page whose read
// another reader started is waited for). Blocks: run it off the JS thread.
SysResult WarmChunk(const FdRef& file, WarmState* state, int64_t offset, int64_t length, bool* eof);

// The largest count the kernel moves in one sendfile/read call.
constexpr int64_t kMaxIoPerCall = 0x7ffff000;

// /dev/null, opened once for the process (O_CLOEXEC), or -errno (a failure
// is not remembered: the next call tries again).
int NullFd();

}  // namespace pagewarm
