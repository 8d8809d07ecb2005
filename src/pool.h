// pagewarm's own threads: a process-wide pool shared by every environment,
// so warm-ups never occupy the libuv threadpool (4 threads shared with fs,
// dns.lookup, crypto and zlib).
//
// Jobs are served round-robin one slice at a time: a 4 KiB warm-up queued
// behind a 10 GiB one waits for at most one slice (one chunk) of it. Threads
// start with the first job, and stop (joined) when the last environment
// that uses the addon is torn down.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "job.h"
#include "sys_result.h"

namespace pagewarm {

class Poller;

struct PoolStats {
  int64_t queued = 0;   // jobs waiting for a thread
  int64_t active = 0;   // jobs running a slice now
  int64_t waiting = 0;  // jobs parked until their fd is ready
  int64_t threads = 0;  // configured thread count
};

class Pool {
 public:
  static Pool& Get();  // never destroyed: threads may outlive static teardown

  void Acquire();  // an environment starts using the pool
  void Release();  // ...and stops; the last one stops the threads

  SysResult Submit(Job* job);           // JS thread
  void Resume(Job* job);                // a parked job is ready again
  void Nudge();                         // parked jobs were cancelled: look
  SysResult SetThreads(int count);      // 1..256
  void SetChunkSize(int64_t bytes);     // >= one page
  int64_t chunk_size() const { return chunk_size_.load(std::memory_order_relaxed); }
  PoolStats Stats();

 private:
  Pool();
  void Run(size_t index);
  SysResult StartThreadsLocked();

  std::mutex lifecycle_;  // Acquire/Release/SetThreads, never held by workers
  int envs_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> ready_;
  std::vector<std::thread> threads_;
  size_t target_;
  bool stopping_ = false;
  int64_t active_ = 0;
  std::atomic<int64_t> chunk_size_;
  Poller* poller_ = nullptr;
};

}  // namespace pagewarm
