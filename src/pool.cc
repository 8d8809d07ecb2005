#include "pool.h"

#include <signal.h>
#include <stdio.h>

#include <uv.h>

#include <algorithm>
#include <unordered_set>

#include "env_queue.h"
#include "poller.h"

namespace pagewarm {

namespace {
constexpr int64_t kDefaultChunk = 8 << 20;

// One thread per CPU this process may run on, at least 2 and at most 4. A
// warm-up of a fast disk is kernel CPU work (page allocation, the device's
// completions), so more runnable threads than CPUs take the event loop's
// CPU: on 2 CPUs, with 4 threads an fs.stat's p99 during warm-ups was over
// twice its idle p99 in 3 of 7 runs of bench/isolation.ts, with 2 threads in
// none of 7, and the warm-ups took as long (BENCHMARKS.md). 2 keeps one slow disk read from holding the whole pool.
size_t DefaultThreads() {
  return std::clamp<size_t>(uv_available_parallelism(), 2, 4);
}
}  // namespace

Pool& Pool::Get() {
  static Pool* pool = new Pool();  // never destroyed, see pool.h
  return *pool;
}

Pool::Pool() : target_(DefaultThreads()), chunk_size_(kDefaultChunk) {
  poller_ = new Poller(this);
}

void Pool::Acquire() {
  std::lock_guard<std::mutex> lock(lifecycle_);
  envs_++;
}

void Pool::Release() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_);
  if (--envs_ > 0) return;

  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (threads_.empty()) return;
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (std::thread& t : threads) t.join();
  std::unordered_set<Job*> parked = poller_->Stop();

  // Every environment is gone, so these are all cancelled: free them.
  std::deque<Job*> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(ready_);
    stopping_ = false;
  }
  for (Job* job : left) job->owner->Complete(job);
  for (Job* job : parked) job->owner->Complete(job);
}

SysResult Pool::StartThreadsLocked() {
  if (threads_.empty()) {
    SysResult r = poller_->Start();
    if (!r.ok()) return r;
  }
  while (threads_.size() < target_) {
    try {
      size_t index = threads_.size();
      threads_.emplace_back(&Pool::Run, this, index);
      char name[16];  // named here, so it is visible as soon as we return
      snprintf(name, sizeof name, "pagewarm-%hhu", static_cast<unsigned char>(index));  // < 256
      pthread_setname_np(threads_.back().native_handle(), name);
    } catch (const std::system_error& e) {
      if (!threads_.empty()) break;  // run with what we have
      return SysResult::Fail(e.code().value(), "pthread_create");
    }
  }
  return SysResult::Ok(0);
}

SysResult Pool::Submit(Job* job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (threads_.size() < target_) {
      SysResult r = StartThreadsLocked();
      if (!r.ok()) return r;
    }
    ready_.push_back(job);
  }
  cv_.notify_one();
  return SysResult::Ok(0);
}

void Pool::Resume(Job* job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_.push_back(job);
  }
  cv_.notify_one();
}

void Pool::Nudge() { poller_->Nudge(); }

SysResult Pool::SetThreads(int count) {
  std::lock_guard<std::mutex> lifecycle(lifecycle_);
  std::vector<std::thread> retired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    target_ = static_cast<size_t>(count);
    if (threads_.empty()) return SysResult::Ok(0);  // started on first use
    if (threads_.size() < target_) return StartThreadsLocked();
    while (threads_.size() > target_) {
      retired.push_back(std::move(threads_.back()));
      threads_.pop_back();
    }
  }
  cv_.notify_all();
  for (std::thread& t : retired) t.join();  // each finishes its slice first
  return SysResult::Ok(0);
}

void Pool::SetChunkSize(int64_t bytes) {
  chunk_size_.store(bytes, std::memory_order_relaxed);
}

PoolStats Pool::Stats() {
  PoolStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.queued = static_cast<int64_t>(ready_.size());
    s.active = active_;
    s.threads = static_cast<int64_t>(target_);
  }
  s.waiting = poller_->parked();
  return s;
}

void Pool::Run(size_t index) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals belong to Node's threads

  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || index >= target_ || !ready_.empty(); });
    if (stopping_ || index >= target_) return;
    Job* job = ready_.front();
    ready_.pop_front();
    active_++;
    lock.unlock();

    Slice how = job->RunSlice();

    lock.lock();
    active_--;
    if (how == Slice::kMore) {
      ready_.push_back(job);  // behind every other job: round-robin
      continue;
    }
    lock.unlock();
    if (how == Slice::kWait) {
      poller_->Park(job);
    } else {
      job->owner->Complete(job);
    }
    lock.lock();
  }
}

}  // namespace pagewarm
