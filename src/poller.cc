#include "poller.h"

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vector>

#include "pool.h"

namespace pagewarm {

Poller::~Poller() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (event_fd_ >= 0) close(event_fd_);
}

SysResult Poller::Start() {
  if (epoll_fd_ < 0) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return SysResult::Fail(errno, "epoll_create1");
  }
  if (event_fd_ < 0) {
    event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd_ < 0) return SysResult::Fail(errno, "eventfd");
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the eventfd
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev) != 0) {
      // Not kept: an eventfd outside the epoll set could never wake the
      // thread, and Stop() would join it forever. The next Start() retries.
      int err = errno;
      close(event_fd_);
      event_fd_ = -1;
      return SysResult::Fail(err, "epoll_ctl");
    }
  }
  stopping_ = false;
  try {
    thread_ = std::thread(&Poller::Run, this);
    pthread_setname_np(thread_.native_handle(), "pagewarm-poll");
  } catch (const std::system_error& e) {
    return SysResult::Fail(e.code().value(), "pthread_create");
  }
  return SysResult::Ok(0);
}

std::unordered_set<Job*> Poller::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  Nudge();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (Job* job : parked_) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, job->wait_fd, nullptr);
    job->parked_in_.store(nullptr, std::memory_order_seq_cst);
  }
  cancelled_.clear();
  std::unordered_set<Job*> left;
  left.swap(parked_);
  return left;
}

void Poller::Park(Job* job) {
  std::lock_guard<std::mutex> lock(mu_);
  // Published before the flag is read (both seq_cst): a Cancel() that this
  // read misses sees parked_in_ and hands the job to Cancelled().
  job->parked_in_.store(this, std::memory_order_seq_cst);
  if (job->cancelled()) {
    // Cancelled between its slice and here: its descriptor may never
    // become ready.
    job->parked_in_.store(nullptr, std::memory_order_seq_cst);
    pool_->Resume(job);
    return;
  }
  struct epoll_event ev = {};
  ev.events = job->wait_events | EPOLLONESHOT | EPOLLERR | EPOLLHUP;
  ev.data.ptr = job;
  parked_.insert(job);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, job->wait_fd, &ev) != 0) {
    // Cannot wait on it: let the job retry its call and see the real error.
    parked_.erase(job);
    job->parked_in_.store(nullptr, std::memory_order_seq_cst);
    pool_->Resume(job);
  }
}

void Poller::Cancelled(Job* job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (parked_.count(job) == 0) return;  // resumed already, or Park() saw the flag
    cancelled_.push_back(job);
  }
  Nudge();
}

void Poller::Nudge() {
  if (event_fd_ < 0) return;  // never started: nothing is parked
  uint64_t one = 1;
  ssize_t rc = write(event_fd_, &one, sizeof one);
  (void)rc;  // EAGAIN: a wake-up is already pending
}

int64_t Poller::parked() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(parked_.size());
}

void Poller::Run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll_fd_, events, 64, -1);
    if (n < 0 && errno != EINTR) break;
    std::vector<Job*> ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      for (int i = 0; i < n; i++) {
        Job* job = static_cast<Job*>(events[i].data.ptr);
        if (job == nullptr) {
          uint64_t count;
          ssize_t rc = read(event_fd_, &count, sizeof count);
          (void)rc;
          continue;
        }
        if (parked_.erase(job)) ready.push_back(job);
      }
      // Cancelled jobs leave at once, whatever their descriptor does. An
      // entry can be stale (resumed above, or by an earlier wake-up, and
      // even freed since): only a job still parked here is touched, and a
      // parked job is alive. A new job at a freed one's address is resumed
      // only if it too was cancelled.
      for (Job* job : cancelled_) {
        auto it = parked_.find(job);
        if (it != parked_.end() && job->cancelled()) {
          parked_.erase(it);
          ready.push_back(job);
        }
      }
      cancelled_.clear();
      for (Job* job : ready) {
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, job->wait_fd, nullptr);
        job->parked_in_.store(nullptr, std::memory_order_seq_cst);
      }
    }
    for (Job* job : ready) pool_->Resume(job);
  }
}

}  // namespace pagewarm
