// pagewarm's own threads: a process-wide pool shared by every environment,
// so warm-ups never occupy the libuv threadpool (4 threads shared with fs,
// dns.lookup, crypto and zlib).
//
// Jobs are served round-robin one slice at a time: a 4 KiB warm-up queued
// behind a 10 GiB one waits for at most one slice (one chunk) of it. Threads
// start with the first job. They are detached, and never joined: a slice can
// block for as long as its read does (a hung NFS or FUSE server, a throttled
// disk), and no JS thread may wait for that. A thread that is no longer
// wanted (configure() shrank the pool, or the last environment that uses the
// addon was torn down) is retired: it exits when its current slice returns.
// stats() counts the threads still running, retired ones included.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "job.h"
#include "sys_result.h"

namespace pagewarm {

class Poller;

struct PoolStats {
  int64_t queued = 0;   // jobs waiting for a thread
  int64_t active = 0;   // jobs running a slice now
  int64_t waiting = 0;  // jobs parked until their fd is ready
  int64_t threads = 0;  // threads running now (retired ones finishing a slice included)
  int64_t target = 0;   // configured thread count
};

class Pool {
 public:
  static Pool& Get();  // never destroyed: threads may outlive static teardown

  void Acquire();  // an environment starts using the pool
  void Release();  // ...and stops; the last one retires the threads

  SysResult Submit(Job* job);        // JS thread
  void Resume(Job* job);             // a parked job is ready again
  void Nudge();                      // parked jobs were cancelled: look
  SysResult SetThreads(int count);   // 1..256
  void SetChunkSize(int64_t bytes);  // >= one page
  int64_t chunk_size() const { return chunk_size_.load(std::memory_order_relaxed); }
  PoolStats Stats();

 private:
  // One per thread, owned (and freed) by its thread once it is started.
  struct Worker {
    size_t index;          // the N of its name, pagewarm-N
    bool retired = false;  // guarded by mu_: exit when the current slice returns
  };

  Pool();
  static void* ThreadMain(void* arg);
  void Run(Worker* self);
  SysResult StartThreadsLocked();

  std::mutex lifecycle_;  // Acquire/Release/SetThreads, never held by workers
  int envs_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> ready_;
  std::vector<Worker*> workers_;  // the threads that are wanted (not retired)
  size_t target_;
  int64_t live_ = 0;  // threads started and not yet exited
  int64_t active_ = 0;
  bool poller_running_ = false;
  std::atomic<int64_t> chunk_size_;
  Poller* poller_ = nullptr;
};

}  // namespace pagewarm
