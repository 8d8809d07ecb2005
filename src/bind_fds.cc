// openFile / pin / unpin: descriptors this environment holds for JS.
//
// A pinned descriptor stays open until unpin(fd) or until the environment
// is torn down (PinnedFds in Binding), so a worker terminated mid-call
// leaks none. A job working on one shares it (fd_ref.h) instead of taking
// a second duplicate.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "addon.h"
#include "args.h"
#include "values.h"

namespace pagewarm {
namespace {

// Opens a path for reading on a pool thread. The descriptor is owned by the
// job until it settles, so if the environment is torn down first (a worker
// terminated) the job is freed and closes it: nothing leaks.
class OpenJob : public Job {
 public:
  explicit OpenJob(std::string path) : Job("open"), path_(std::move(path)) {}
  ~OpenJob() override {
    if (fd_ >= 0) close(fd_);
  }

 protected:
  Slice Step() override {
    // O_NONBLOCK: a FIFO must not hang the open (it is refused as ESPIPE by
    // the caller's checks); regular-file reads and sendfile ignore the flag.
    do {
      fd_ = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    } while (fd_ < 0 && errno == EINTR);
    return fd_ < 0 ? Fail(SysResult::Fail(errno, "open")) : Slice::kDone;
  }

  Napi::Value Value(Napi::Env env) override {
    Napi::Value fd = Napi::Number::New(env, fd_);
    int opened = fd_;
    fd_ = -1;  // the environment's now: closed by unpin() or at its teardown
    env.GetInstanceData<Binding>()->pinned.Add(opened);
    return fd;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

// openFile(path, id) -> Promise<fd> | {errno, syscall}: opens path read-only
// (O_NONBLOCK, O_CLOEXEC) on pagewarm's threads. The descriptor is pinned:
// it stays open until unpin(fd) or until this environment is torn down.
Napi::Value Binding::OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  uint32_t id;
  if (!ArgString(info, 0, "pagewarm: expected a path", &path) || !ArgJobId(info, 1, &id))
    return Napi::Value();
  if (path.empty() || path.find('\0') != std::string::npos) {
    return SysErrorValue(env, SysResult::Fail(path.empty() ? ENOENT : EINVAL, "open"));
  }
  std::unique_ptr<OpenJob> job(new OpenJob(std::move(path)));
  job->id = id;
  return queue->Submit(env, job.release());
}

// pin(fd) -> fd | {errno, syscall}: a private duplicate of fd (F_DUPFD_CLOEXEC),
// open until unpin() or until this environment is torn down. A caller that
// closes fd meanwhile (and gets its number reused) cannot redirect a send
// that works on the duplicate.
Napi::Value Binding::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, &fd)) return Napi::Value();
  int dup = fd == kNoFd ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return SysErrorValue(env, SysResult::Fail(fd == kNoFd ? EBADF : errno, "dup"));
  pinned.Add(dup);
  return Napi::Number::New(env, dup);
}

// unpin(fd): releases a descriptor from pin() or openFile(); others are
// ignored. It is closed now, or when the last job working on it is freed.
Napi::Value Binding::Unpin(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgFd(info, 0, &fd)) return Napi::Value();
  pinned.Remove(fd);
  return info.Env().Undefined();
}

}  // namespace pagewarm
