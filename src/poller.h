// Parks jobs that wait for a descriptor (a socket that is not writable yet)
// without holding a pool thread: one epoll thread for all of them. Our
// epoll set holds our own dup of the socket, so it does not disturb the
// registration libuv holds for the original descriptor.
//
// Each wake-up costs O(ready): the jobs epoll reports, plus the parked jobs
// cancelled since the last one (Job::Cancel hands them over). Parked jobs
// that nothing happened to are never visited.
#pragma once
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "job.h"
#include "sys_result.h"

namespace pagewarm {

class Pool;

class Poller {
 public:
  explicit Poller(Pool* pool) : pool_(pool) {}
  ~Poller();

  SysResult Start();
  // Stops the thread and returns the jobs still parked, for the pool to finish.
  std::unordered_set<Job*> Stop();

  // Parks job until job->wait_fd reports job->wait_events (or an error).
  void Park(Job* job);
  // Wakes the thread to resume parked jobs that were cancelled.
  void Nudge();
  int64_t parked();

 private:
  friend class Job;
  // Job::Cancel() of a job that may be parked here: resume it at the next
  // wake-up, whatever its descriptor does.
  void Cancelled(Job* job);
  void Run();

  Pool* pool_;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::unordered_set<Job*> parked_;  // guarded by mu_
  std::vector<Job*> cancelled_;      // guarded by mu_: parked, cancelled, not yet resumed
  bool stopping_ = false;            // guarded by mu_
};

}  // namespace pagewarm
