#include "pool.h"

#include <dlfcn.h>
#include <pthread.h>
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
// none of 7, and the warm-ups took as long (BENCHMARKS.md). 2 keeps one slow
// disk read from holding the whole pool.
size_t DefaultThreads() { return std::clamp<size_t>(uv_available_parallelism(), 2, 4); }

// Keeps this shared object mapped until the process ends. Node unloads an
// addon (dlclose) when the worker that loaded it is destroyed; a detached
// pool thread still inside a slice (see pool.h) would then run unmapped
// code. RTLD_NOLOAD only finds the copy already loaded, and RTLD_NODELETE
// marks it never to be unloaded.
void PinThisLibrary() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&DefaultThreads), &info) == 0 || info.dli_fname == nullptr)
    return;
  dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}
}  // namespace

Pool& Pool::Get() {
  static Pool* pool = new Pool();  // never destroyed, see pool.h
  return *pool;
}

Pool::Pool() : target_(DefaultThreads()), chunk_size_(kDefaultChunk) {
  PinThisLibrary();
  poller_ = new Poller(this);
}

void Pool::Acquire() {
  std::lock_guard<std::mutex> lock(lifecycle_);
  envs_++;
}

// The last environment is gone, so every job still in the pool was
// cancelled by its queue's teardown (EnvQueue::OnTeardown) before this runs.
// Nothing here waits for a pool thread: they are told to retire and exit
// when their current slice returns, however long that takes. Jobs queued or
// parked are freed here; a job inside a slice is freed by its own thread
// (Run() finishes a cancelled job instead of requeuing or parking it, and
// Resume() finishes one when no thread is wanted).
void Pool::Release() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_);
  if (--envs_ > 0) return;

  bool poller_running;
  {
    // From here on a thread that takes mu_ after its slice sees its job's
    // cancellation (it was made on this thread before), and Resume() sees
    // that no thread is wanted.
    std::lock_guard<std::mutex> lock(mu_);
    for (Worker* w : workers_) w->retired = true;
    workers_.clear();
    poller_running = poller_running_;
    poller_running_ = false;
  }
  cv_.notify_all();
  // The poller thread only waits in epoll_wait, which Stop() wakes: joining
  // it cannot block on I/O.
  std::unordered_set<Job*> parked;
  if (poller_running) parked = poller_->Stop();

  std::deque<Job*> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(ready_);
  }
  for (Job* job : left) job->owner->Complete(job);
  for (Job* job : parked) job->owner->Complete(job);
}

void* Pool::ThreadMain(void* arg) {
  Pool::Get().Run(static_cast<Worker*>(arg));
  return nullptr;
}

// Under mu_. Starts the poller (once) and threads up to the target, detached.
// A failed pthread_create is an error (EAGAIN under a pids limit) only when
// no thread runs; otherwise the pool runs with what it has, and the next
// Submit tries again.
SysResult Pool::StartThreadsLocked() {
  if (!poller_running_) {
    SysResult r = poller_->Start();
    if (!r.ok()) return r;
    poller_running_ = true;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // Signals belong to Node's threads: a new thread inherits this mask, so
  // it never runs a handler, not even before its first instruction.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int err = 0;
  while (workers_.size() < target_) {
    Worker* w = new Worker{workers_.size()};
    pthread_t tid;
    err = pthread_create(&tid, &attr, &Pool::ThreadMain, w);
    if (err != 0) {
      delete w;
      break;
    }
    workers_.push_back(w);
    live_++;
    // Named here, so it is visible as soon as we return. tid is valid: the
    // thread cannot exit before it has taken mu_, which we hold.
    char name[16];
    snprintf(name, sizeof name, "pagewarm-%hhu", static_cast<unsigned char>(w->index));  // < 256
    pthread_setname_np(tid, name);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (workers_.empty()) return SysResult::Fail(err, "pthread_create");
  return SysResult::Ok(0);
}

SysResult Pool::Submit(Job* job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (workers_.size() < target_) {
      SysResult r = StartThreadsLocked();
      if (!r.ok()) return r;
    }
    ready_.push_back(job);
  }
  cv_.notify_one();
  return SysResult::Ok(0);
}

void Pool::Resume(Job* job) {
  bool finish = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // No thread is wanted only after Release(), when every job is cancelled:
    // finish it here rather than queue it for threads that will not come.
    finish = workers_.empty() && job->cancelled();
    if (!finish) ready_.push_back(job);
  }
  if (finish) {
    job->RunSlice();  // records the cancellation (job.h)
    job->owner->Complete(job);
    return;
  }
  cv_.notify_one();
}

void Pool::Nudge() { poller_->Nudge(); }

// Shrinking retires the surplus threads and returns at once: each exits when
// its current slice returns, which may be never soon (a hung read).
SysResult Pool::SetThreads(int count) {
  std::lock_guard<std::mutex> lifecycle(lifecycle_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    target_ = static_cast<size_t>(count);
    if (workers_.empty()) return SysResult::Ok(0);  // started on first use
    if (workers_.size() < target_) return StartThreadsLocked();
    while (workers_.size() > target_) {
      workers_.back()->retired = true;
      workers_.pop_back();
    }
  }
  cv_.notify_all();
  return SysResult::Ok(0);
}

void Pool::SetChunkSize(int64_t bytes) { chunk_size_.store(bytes, std::memory_order_relaxed); }

PoolStats Pool::Stats() {
  PoolStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.queued = static_cast<int64_t>(ready_.size());
    s.active = active_;
    s.threads = live_;
    s.target = static_cast<int64_t>(target_);
  }
  s.waiting = poller_->parked();
  return s;
}

void Pool::Run(Worker* self) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return self->retired || !ready_.empty(); });
    if (self->retired) break;
    Job* job = ready_.front();
    ready_.pop_front();
    active_++;
    lock.unlock();

    Slice how = job->RunSlice();

    lock.lock();
    active_--;
    // A cancelled job is finished here, never requeued or parked: the pool
    // or the poller may be stopping (Release()). Read under mu_, so a
    // cancellation made before Release() took mu_ is seen.
    if (how != Slice::kDone && job->cancelled()) {
      lock.unlock();
      how = job->RunSlice();  // records the cancellation: kDone (job.h)
      lock.lock();
    }
    if (how == Slice::kMore) {
      ready_.push_back(job);  // behind every other job: round-robin
      continue;               // (if this thread is retired, see below)
    }
    lock.unlock();
    if (how == Slice::kWait) {
      poller_->Park(job);
    } else {
      job->owner->Complete(job);
    }
    lock.lock();
  }
  // Retired. A job this thread requeued last, or one queued while every
  // other thread slept, is for the threads that stay: wake them.
  live_--;
  bool work_left = !ready_.empty();
  lock.unlock();
  if (work_left) cv_.notify_all();
  delete self;
}

}  // namespace pagewarm
