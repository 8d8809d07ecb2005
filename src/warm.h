// Warming: bring a byte range of a file into the page cache without copying
// it to user space, by sendfile(2) to /dev/null. The kernel reads the pages
// into the page cache to splice them, and the null device drops them.
#pragma once
#include <atomic>
#include <cstdint>
#include "file_ref.h"
#include "sys_result.h"

namespace pagewarm {

// Process-wide counters, reported by stats().
struct WarmCounters {
  std::atomic<int64_t> warmed_bytes{0};    // bytes covered by warm-ups
  std::atomic<int64_t> fast_path_hits{0};  // warm-ups settled on the JS thread
  std::atomic<int64_t> sendfile_chunks{0}; // chunks warmed with sendfile
  std::atomic<int64_t> fallback_reads{0};  // chunks warmed by read(2)
  std::atomic<int64_t> direct_reopens{0};  // O_DIRECT fds warmed via a reopen
  std::atomic<int64_t> inline_sends{0};    // sends begun on the JS thread (bind_send.cc)
};
WarmCounters& Counters();

// Test hook: warm every range by read(2), as where splice is unsupported.
void SetForceReadFallback(bool on);
bool ForceReadFallback();

// The per-operation state of one warm-up across its chunks.
struct WarmState {
  bool read_fallback = ForceReadFallback();  // splice unsupported: read instead
};

// Warms [offset, offset + length) of file. Returns the bytes covered, which
// is short only at end of file (*eof is then set). Reads every page, resident
// or not, so it returns only once each page is uptodate (a page whose read
// another reader started is waited for). Blocks: run it off the JS thread.
SysResult WarmChunk(const FileRef& file, WarmState* state, int64_t offset,
                    int64_t length, bool* eof);

// The largest count the kernel moves in one sendfile/read call.
constexpr int64_t kMaxIoPerCall = 0x7ffff000;

// /dev/null, opened once for the process (O_CLOEXEC), or -errno (a failure
// is not remembered: the next call tries again).
int NullFd();

}  // namespace pagewarm
