// The process-wide counters stats() reports. One set for the process, shared
// by every environment: they count the work of pagewarm's threads and of
// the kernel, which every environment shares. Any thread adds to them
// (relaxed atomics: each is a tally, read on its own).
#pragma once
#include <atomic>
#include <cstdint>

namespace pagewarm {

struct StatsCounters {
  std::atomic<int64_t> warmed_bytes{0};     // bytes covered by warm-ups
  std::atomic<int64_t> fast_path_hits{0};   // warm-ups settled on the JS thread
  std::atomic<int64_t> sendfile_chunks{0};  // chunks warmed with sendfile
  std::atomic<int64_t> fallback_reads{0};   // chunks warmed by read(2)
  std::atomic<int64_t> direct_reopens{0};   // O_DIRECT fds warmed via a reopen
  std::atomic<int64_t> inline_sends{0};     // sends begun on the JS thread (bind_send.cc)
  std::atomic<int64_t> from_disk_bytes{0};  // bytes warmed that were not in the page cache
  std::atomic<int64_t> jobs{0};             // jobs handed to pagewarm's threads
  std::atomic<int64_t> queued_ns{0};        // their time waiting for a thread, summed
};

// The counters; never destroyed (a pool thread may count after static teardown).
StatsCounters& Counters();

// Adds n to one of the counters.
inline void Count(std::atomic<int64_t>& counter, int64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace pagewarm
