// The descriptors an operation works on.
//
// A JS close() while an operation is in flight must never redirect its
// system calls to a descriptor number the kernel has handed out again. So
// once work leaves the JS thread it holds a descriptor of its own: a
// duplicate of the caller's (F_DUPFD_CLOEXEC), or, when the caller's is one
// this environment pinned (pin(), openFile()), a share of that one, which
// unpin() cannot close under it. Either way one FdRef owns it, and the last
// owner to let go closes it, on whatever thread that happens.
#pragma once
#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "args.h"
#include "sys_result.h"

namespace pagewarm {

// One descriptor, closed when the last holder lets go. Any thread.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd();
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};
using SharedFd = std::shared_ptr<OwnedFd>;

// Descriptors this environment holds for JS (pin(), openFile()) until
// unpin() or its teardown. The set is touched on the JS thread only; a job
// sharing one of its descriptors may let go of it on any thread.
class PinnedFds {
 public:
  // Takes fd over; it is closed even if this throws.
  void Add(int fd);
  // A share of fd, or null when fd is not pinned here.
  SharedFd Share(int fd) const;
  // Forgets fd (any other number is ignored). It is closed now, or when the
  // last job sharing it is freed.
  void Remove(int fd) { fds_.erase(fd); }

 private:
  std::unordered_map<int, SharedFd> fds_;
};

// What an operation needs a descriptor to be. Errors name the operation's
// call (`syscall`), as the call itself would have failed.
enum class FdUse {
  // A source with a page cache: a regular file or a block device, open for
  // reading. EBADF (closed, write-only, O_PATH), EISDIR (a directory),
  // ESPIPE (a pipe or socket), EINVAL (a character device).
  kReadFile,
  // A send's destination: open for writing. EBADF (closed, read-only, O_PATH).
  kWrite,
};

class FdRef {
 public:
  FdRef() = default;
  FdRef(const FdRef&) = delete;
  FdRef& operator=(const FdRef&) = delete;

  // Checks fd (kNoFd: EBADF) for `use` without taking it: enough for work
  // done synchronously on the JS thread, such as a fast path. Adopt() takes
  // it if the work moves to another thread.
  SysResult Inspect(int fd, FdUse use, const char* syscall);
  // Takes the inspected descriptor for this operation: a share of it when
  // `pinned` holds it, a duplicate otherwise. With reopen_direct, an O_DIRECT
  // file is replaced by a buffered reopen of the same file through
  // /proc/self/fd (splice from O_DIRECT bypasses the page cache).
  SysResult Adopt(const char* syscall, bool reopen_direct, const PinnedFds* pinned);
  // Inspect(), then Adopt().
  SysResult Open(int fd, FdUse use, const char* syscall, bool reopen_direct,
                 const PinnedFds* pinned);
  // Takes over `fd`, which the operation opened itself (read-only, buffered)
  // and has just described with fstat as `st`: no duplicate, no second look.
  // It is closed when this FdRef (or the last share of it) goes.
  void Own(int fd, const struct stat& st, int64_t size);

  int fd() const { return fd_; }
  int64_t size() const { return size_; }             // kReadFile: bytes in the file or device
  uint32_t uid() const { return uid_; }              // kReadFile: the file's owner
  bool direct() const { return direct_; }            // opened with O_DIRECT
  bool nonblocking() const { return nonblocking_; }  // opened with O_NONBLOCK
  bool reopened() const { return reopened_; }        // Adopt() made a buffered reopen

 private:
  SysResult CheckReadFile(const char* syscall);

  int fd_ = kNoFd;  // the caller's until Adopt(), then held_'s
  SharedFd held_;
  int64_t size_ = 0;
  uint32_t uid_ = 0;
  bool direct_ = false;
  bool nonblocking_ = false;
  bool reopened_ = false;
};

// A byte range of a file as a call names it, resolved against the file.
struct ByteRange {
  int64_t offset = 0;
  // The length asked for, with -1 ("to the end of the file") resolved.
  int64_t length = 0;
  // The part inside the file: 0 when the range is empty or starts at or
  // past the end (sendfile would say EOVERFLOW past the file system's
  // largest file size; every call answers 0 there instead).
  int64_t in_file = 0;
  bool empty() const { return in_file == 0; }
};

// Resolves [offset, offset + length) of an inspected file: any negative
// length means to the end. A negative offset is EINVAL under `syscall` (as
// sendfile(2) says), refused before any arithmetic on it.
SysResult ResolveRange(const FdRef& file, int64_t offset, int64_t length, const char* syscall,
                       ByteRange* out);

// Clamps [offset, offset + length) to a file of `size` bytes; returns the
// clamped length (0 when offset is at or past the end).
inline int64_t ClampRange(int64_t size, int64_t offset, int64_t length) {
  if (offset >= size) return 0;
  int64_t rest = size - offset;
  return length < rest ? length : rest;
}

}  // namespace pagewarm
