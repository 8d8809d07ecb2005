// send / sendSync: sendfile(2) from a file to a socket or other descriptor.
//
// The async form runs on pagewarm's threads, except that a small range the
// page cache holds is first tried once from the JS thread (see Send). A
// non-blocking socket that is
// full parks the job in the Poller (no thread is held while a receiver is
// slow); each slice moves at most one chunk, so one fast receiver cannot
// starve other jobs.
//
// SIGPIPE: a peer that went away makes sendfile raise SIGPIPE in the calling
// thread. Pool threads block every signal, so there it stays pending and
// harmless; sendSync runs on a JS thread and blocks SIGPIPE for the call (see
// SigpipeGuard), so EPIPE is reported even where SIGPIPE's disposition is
// SIG_DFL (an embedder, or a removed process.on('SIGPIPE') listener).
//
// The async form expects a non-blocking destination (every socket Node owns
// is one). A blocking destination holds one pool thread for as long as the
// receiver is slow, and a cancel takes effect when its sendfile call returns.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <string>

#include "addon.h"
#include "pool.h"
#include "residency.h"
#include "warm.h"

namespace pagewarm {
namespace {

// A private dup of the destination, so a close() in JS cannot redirect us.
class OutRef {
 public:
  ~OutRef() {
    if (fd_ >= 0) close(fd_);
  }
  SysResult Open(int64_t user_fd) {
    if (!FdInRange(user_fd)) return SysResult::Fail(EBADF, "sendfile");
    fd_ = fcntl(static_cast<int>(user_fd), F_DUPFD_CLOEXEC, 0);
    if (fd_ < 0) return SysResult::Fail(errno, "sendfile");
    int flags = fcntl(fd_, F_GETFL);
    if (flags < 0) return SysResult::Fail(errno, "sendfile");
    if ((flags & O_PATH) || (flags & O_ACCMODE) == O_RDONLY) return SysResult::Fail(EBADF, "sendfile");
    nonblocking_ = (flags & O_NONBLOCK) != 0;
    return SysResult::Ok(0);
  }
  int fd() const { return fd_; }
  bool nonblocking() const { return nonblocking_; }

 private:
  int fd_ = -1;
  bool nonblocking_ = false;
};

// A failure reason ({errno, syscall, ...}) that also says how much reached
// the destination before it: callers need to know.
Napi::Value WithBytesSent(Napi::Value reason, int64_t sent) {
  reason.As<Napi::Object>().Set("bytesSent", Napi::Number::New(reason.Env(), static_cast<double>(sent)));
  return reason;
}

// Ranges up to this size whose pages are all in the page cache are sent
// from the JS thread, once, before any thread hop: see Binding::Send.
constexpr int64_t kInlineSendMax = 128 << 10;

// Blocks SIGPIPE on the calling thread for its lifetime. If our sendfile
// failed with EPIPE (which raised SIGPIPE at this thread), the pending signal
// is consumed before the old mask comes back, so it is never delivered.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    if (raised_ && !was_pending_) {
      struct timespec zero = {0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;
  void Saw(const SysResult& r) {
    if (r.err == EPIPE) raised_ = true;
  }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool raised_ = false;
};

// Sends up to `length` bytes; stops early at end of file (*eof) or when the
// destination would block (*would_block).
SysResult SendSome(int out, int in, int64_t offset, int64_t length, bool* eof,
                   bool* would_block) {
  int64_t done = 0;
  *eof = *would_block = false;
  while (done < length) {
    off_t pos = offset + done;
    ssize_t n = sendfile(out, in, &pos, std::min(length - done, kMaxIoPerCall));
    if (n > 0) { done += n; continue; }
    if (n == 0) { *eof = true; break; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) { *would_block = true; break; }
    SysResult r = SysResult::Fail(errno, "sendfile");
    r.value = done;
    return r;
  }
  return SysResult::Ok(done);
}

// Both caller descriptors must be open before either is duplicated: a dup
// takes the lowest free number, which is the other argument's number if
// that one was closed, and the call would then check (or use) our own dup.
SysResult CheckOpen(int64_t out_fd, int64_t in_fd) {
  if (!FdInRange(out_fd) || !FdInRange(in_fd)) return SysResult::Fail(EBADF, "sendfile");
  if (fcntl(static_cast<int>(out_fd), F_GETFD) < 0 || fcntl(static_cast<int>(in_fd), F_GETFD) < 0)
    return SysResult::Fail(errno, "sendfile");
  return SysResult::Ok(0);
}

class SendJob : public Job {
 public:
  Slice RunSlice() override {
    if (cancelled()) {
      aborted_ = true;
      return Slice::kDone;
    }
    int64_t chunk = std::min(length - done_, Pool::Get().chunk_size());
    bool eof, would_block;
    SysResult r = SendSome(out.fd(), file.fd(), offset + done_, chunk, &eof, &would_block);
    done_ += r.value;
    if (!r.ok()) {
      error_ = r;
      return Slice::kDone;
    }
    if (eof || done_ >= length) return Slice::kDone;
    if (would_block) {
      wait_fd = out.fd();
      wait_events = EPOLLOUT;
      return Slice::kWait;
    }
    return Slice::kMore;
  }

 protected:
  Napi::Value Result(Napi::Env env, bool* rejected) override {
    *rejected = aborted_ || !error_.ok();
    if (!*rejected) return Napi::Number::New(env, static_cast<double>(sent_before + done_));
    Napi::Value reason = aborted_ ? CancelledValue(env, "sendfile") : SysErrorValue(env, error_);
    return WithBytesSent(reason, sent_before + done_);
  }

 public:
  FileRef file;
  OutRef out;
  int64_t offset = 0;
  int64_t length = 0;
  int64_t sent_before = 0;  // sent from the JS thread before the job was queued

 private:
  int64_t done_ = 0;
  SysResult error_;
  bool aborted_ = false;
};

// Opens a path for reading on a pool thread. The descriptor is owned by the
// job until it settles, so if the environment is torn down first (a worker
// terminated) the job is freed and closes it: nothing leaks.
class OpenJob : public Job {
 public:
  ~OpenJob() override {
    if (fd_ >= 0) close(fd_);
  }

  Slice RunSlice() override {
    if (cancelled()) {
      aborted_ = true;
      return Slice::kDone;
    }
    // O_NONBLOCK: a FIFO must not hang the open (it is refused as ESPIPE by
    // the caller's checks); regular-file reads and sendfile ignore the flag.
    do {
      fd_ = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) error_ = errno;
    return Slice::kDone;
  }

  std::string path;

 protected:
  Napi::Value Result(Napi::Env env, bool* rejected) override {
    *rejected = aborted_ || fd_ < 0;
    if (aborted_) return CancelledValue(env, "open");
    if (fd_ < 0) return SysErrorValue(env, SysResult::Fail(error_, "open"));
    Napi::Value fd = Napi::Number::New(env, fd_);
    env.GetInstanceData<Binding>()->pinned.insert(fd_);  // closed by unpin() or at teardown
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
  int error_ = 0;
  bool aborted_ = false;
};

}  // namespace

Binding::~Binding() {
  for (int fd : pinned) close(fd);
}

// openFile(path, id) -> Promise<fd> | {errno, syscall}: opens path read-only
// (O_NONBLOCK, O_CLOEXEC) on pagewarm's threads. The descriptor is pinned:
// it stays open until unpin(fd) or until this environment is torn down.
Napi::Value Binding::OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t id;
  if (!info[0].IsString()) {
    NAPI_THROW(Napi::TypeError::New(env, "pagewarm: expected a path"), Napi::Value());
  }
  if (!ArgInt64(info, 1, &id)) return Napi::Value();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.empty() || path.find('\0') != std::string::npos) {
    return SysErrorValue(env, SysResult::Fail(path.empty() ? ENOENT : EINVAL, "open"));
  }
  std::unique_ptr<OpenJob> job(new OpenJob());
  job->path = std::move(path);
  job->id = static_cast<uint32_t>(id);
  return queue->Submit(env, job.release());
}

// pin(fd) -> fd | {errno, syscall}: a private duplicate of fd (F_DUPFD_CLOEXEC),
// open until unpin() or until this environment is torn down. A caller that
// closes fd meanwhile (and gets its number reused) cannot redirect a send
// that works on the duplicate.
Napi::Value Binding::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt64(info, 0, &fd)) return Napi::Value();
  int dup = fd < 0 || fd > INT32_MAX ? -1 : fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return SysErrorValue(env, SysResult::Fail(fd < 0 || fd > INT32_MAX ? EBADF : errno, "dup"));
  pinned.insert(dup);
  return Napi::Number::New(env, dup);
}

// unpin(fd): closes a descriptor from pin() or openFile(); others are ignored.
Napi::Value Binding::Unpin(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt64(info, 0, &fd)) return Napi::Value();
  auto it = pinned.find(static_cast<int>(fd));
  if (fd >= 0 && fd <= INT32_MAX && it != pinned.end()) {
    pinned.erase(it);
    close(static_cast<int>(fd));
  }
  return info.Env().Undefined();
}

// send(outFd, inFd, offset, length, id) -> Promise<number> | {errno, syscall}
Napi::Value Binding::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t out_fd, in_fd, offset, length, id;
  if (!ArgInt64(info, 0, &out_fd) || !ArgInt64(info, 1, &in_fd) || !ArgInt64(info, 2, &offset) ||
      !ArgInt64(info, 3, &length) || !ArgInt64(info, 4, &id))
    return Napi::Value();
  std::unique_ptr<SendJob> job(new SendJob());
  SysResult r = CheckOpen(out_fd, in_fd);
  if (r.ok()) r = job->out.Open(out_fd);
  if (r.ok()) r = job->file.Open(in_fd, "sendfile", true);
  if (r.ok() && offset < 0) r = SysResult::Fail(EINVAL, "sendfile");  // as sendfile(2) says
  if (!r.ok()) return SysErrorValue(env, r);
  if (length < 0) length = ClampRange(job->file.size(), offset, INT64_MAX);
  // Nothing to send, or at or past the end: 0 without a thread hop (sendfile
  // would say EOVERFLOW for offsets beyond the filesystem's maximum size).
  if (length == 0 || offset >= job->file.size()) return Napi::Number::New(env, 0);
  // A small range the page cache holds, to a non-blocking destination, goes
  // from the JS thread with no thread hop (about 30 us of handoffs each
  // way on these machines, more than sending 64 KiB costs): the design of
  // Kafka's fix, whose network thread calls sendfile on warmed pages. The
  // destination cannot make it wait (EAGAIN ends the attempt; the rest is
  // queued as usual), and the pages are checked just before: resident, and
  // readable without waiting (cachestat alone also counts pages whose read
  // is still in flight, and sendfile would wait on those). Only pages
  // reclaimed in the microseconds between the check and the call would be
  // read from the disk here.
  int64_t in_bounds = ClampRange(job->file.size(), offset, length);
  if (in_bounds <= kInlineSendMax && job->out.nonblocking() &&
      ReadableWithoutWaiting(job->file.fd(), offset, in_bounds)) {
    Counters().inline_sends.fetch_add(1, std::memory_order_relaxed);
    bool eof, would_block;
    SigpipeGuard no_sigpipe;
    r = SendSome(job->out.fd(), job->file.fd(), offset, length, &eof, &would_block);
    if (!r.ok()) {
      no_sigpipe.Saw(r);
      return WithBytesSent(SysErrorValue(env, r), r.value);
    }
    if (eof || r.value >= length) return Napi::Number::New(env, static_cast<double>(r.value));
    job->sent_before = r.value;
    offset += r.value;
    length -= r.value;
  }
  job->id = static_cast<uint32_t>(id);
  job->offset = offset;
  job->length = length;
  return queue->Submit(env, job.release());
}

// sendSync(outFd, inFd, offset, length) -> number | {errno, syscall, bytesSent}
// Blocks the calling thread, also waiting out EAGAIN on a non-blocking outFd.
Napi::Value Binding::SendSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t out_fd, in_fd, offset, length;
  if (!ArgInt64(info, 0, &out_fd) || !ArgInt64(info, 1, &in_fd) || !ArgInt64(info, 2, &offset) ||
      !ArgInt64(info, 3, &length))
    return Napi::Value();
  OutRef out;
  FileRef file;
  SysResult r = CheckOpen(out_fd, in_fd);
  if (r.ok()) r = out.Open(out_fd);
  if (r.ok()) r = file.Open(in_fd, "sendfile", true);
  if (r.ok() && offset < 0) r = SysResult::Fail(EINVAL, "sendfile");
  if (!r.ok()) return SysErrorValue(env, r);
  if (length < 0) length = ClampRange(file.size(), offset, INT64_MAX);
  if (length == 0 || offset >= file.size()) return Napi::Number::New(env, 0);

  SigpipeGuard no_sigpipe;
  int64_t done = 0;
  while (done < length) {
    bool eof, would_block;
    r = SendSome(out.fd(), file.fd(), offset + done, length - done, &eof, &would_block);
    done += r.value;
    if (!r.ok()) {
      no_sigpipe.Saw(r);
      return WithBytesSent(SysErrorValue(env, r), done);
    }
    if (eof) break;
    if (would_block) {
      struct pollfd p = {out.fd(), POLLOUT, 0};
      while (poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
    }
  }
  return Napi::Number::New(env, static_cast<double>(done));
}

}  // namespace pagewarm
