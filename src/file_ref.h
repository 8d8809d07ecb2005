// A private duplicate of a caller's file descriptor, validated for warming.
//
// Every operation that leaves the JS thread works on its own dup, so a JS
// close() while the operation is in flight can never redirect the syscall to
// a descriptor number the kernel has handed out again.
#pragma once
#include <cstdint>
#include "sys_result.h"

namespace pagewarm {

class FileRef {
 public:
  FileRef() = default;
  ~FileRef();
  FileRef(const FileRef&) = delete;
  FileRef& operator=(const FileRef&) = delete;

  // Duplicates user_fd and checks that it names something with a page cache
  // that can be read: a regular file or a block device, opened for reading.
  // Errors are reported under `syscall`, the call the operation stands for.
  // With reopen_direct, an O_DIRECT descriptor is replaced by a buffered
  // reopen of the same file (splice from O_DIRECT bypasses the page cache).
  // A user_fd outside [0, INT32_MAX] is EBADF: it is never cast into some
  // other descriptor's number.
  SysResult Open(int64_t user_fd, const char* syscall, bool reopen_direct);

  // The same checks on user_fd itself, without a duplicate: for work done
  // synchronously on the JS thread (sync calls, the fast path). Adopt()
  // later takes the duplicate if the work moves to another thread.
  SysResult Inspect(int64_t user_fd, const char* syscall);
  SysResult Adopt(const char* syscall, bool reopen_direct);

  int fd() const { return fd_; }
  int64_t size() const { return size_; }
  bool reopened() const { return reopened_; }
  uint32_t uid() const { return uid_; }
  bool direct() const { return direct_; }

 private:
  SysResult Check(const char* syscall);

  int fd_ = -1;
  bool owned_ = false;   // fd_ is our duplicate, closed by the destructor
  bool direct_ = false;  // opened with O_DIRECT
  int64_t size_ = 0;
  uint32_t uid_ = 0;
  bool reopened_ = false;
};

// Whether a number from JS can name a descriptor. Descriptors are ints; a
// larger number must be refused (EBADF), not cast: 2^32 + 3 would become 3.
inline bool FdInRange(int64_t fd) { return fd >= 0 && fd <= INT32_MAX; }

// Clamps [offset, offset + length) to a file of `size` bytes; returns the
// clamped length (0 when offset is at or past the end).
inline int64_t ClampRange(int64_t size, int64_t offset, int64_t length) {
  if (offset >= size) return 0;
  int64_t rest = size - offset;
  return length < rest ? length : rest;
}

}  // namespace pagewarm
