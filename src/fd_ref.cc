#include "fd_ref.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>

namespace pagewarm {

OwnedFd::~OwnedFd() { close(fd_); }

void PinnedFds::Add(int fd) {
  SharedFd owned;
  try {
    owned = std::make_shared<OwnedFd>(fd);
  } catch (...) {
    close(fd);
    throw;
  }
  fds_.emplace(fd, std::move(owned));  // if this throws, owned closes fd
}

SharedFd PinnedFds::Share(int fd) const {
  auto it = fds_.find(fd);
  return it == fds_.end() ? nullptr : it->second;
}

SysResult FdRef::Open(int fd, FdUse use, const char* syscall, bool reopen_direct,
                      const PinnedFds* pinned) {
  SysResult r = Inspect(fd, use, syscall);
  if (!r.ok()) return r;
  return Adopt(syscall, reopen_direct, pinned);
}

SysResult FdRef::Inspect(int fd, FdUse use, const char* syscall) {
  if (fd == kNoFd) return SysResult::Fail(EBADF, syscall);
  fd_ = fd;
  int flags = fcntl(fd_, F_GETFL);
  if (flags < 0) return SysResult::Fail(errno, syscall);
  // What read/sendfile would say of a descriptor not open the right way.
  int refused = use == FdUse::kReadFile ? O_WRONLY : O_RDONLY;
  if ((flags & O_PATH) || (flags & O_ACCMODE) == refused) return SysResult::Fail(EBADF, syscall);
  direct_ = (flags & O_DIRECT) != 0;
  nonblocking_ = (flags & O_NONBLOCK) != 0;
  return use == FdUse::kReadFile ? CheckReadFile(syscall) : SysResult::Ok(0);
}

SysResult FdRef::CheckReadFile(const char* syscall) {
  struct stat st;
  if (fstat(fd_, &st) != 0) return SysResult::Fail(errno, syscall);
  uid_ = st.st_uid;
  if (S_ISDIR(st.st_mode)) return SysResult::Fail(EISDIR, syscall);
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) return SysResult::Fail(ESPIPE, syscall);
  if (S_ISREG(st.st_mode)) {
    size_ = st.st_size;
  } else if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (ioctl(fd_, BLKGETSIZE64, &bytes) != 0) return SysResult::Fail(errno, syscall);
    size_ = static_cast<int64_t>(bytes);
  } else {
    return SysResult::Fail(EINVAL, syscall);  // character devices: no page cache
  }
  return SysResult::Ok(0);
}

SysResult FdRef::Adopt(const char* syscall, bool reopen_direct, const PinnedFds* pinned) {
  held_ = pinned != nullptr ? pinned->Share(fd_) : nullptr;
  if (held_ == nullptr) {
    int fd = fcntl(fd_, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return SysResult::Fail(errno, syscall);
    held_ = std::make_shared<OwnedFd>(fd);
    fd_ = fd;
  }
  if (reopen_direct && direct_) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd_);
    int buffered = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    // A failure is reported under the operation's call, as for every check.
    if (buffered < 0) return SysResult::Fail(errno, syscall);
    held_ = std::make_shared<OwnedFd>(buffered);
    fd_ = buffered;
    reopened_ = true;
  }
  return SysResult::Ok(0);
}

void FdRef::Own(int fd, const struct stat& st, int64_t size) {
  try {
    held_ = std::make_shared<OwnedFd>(fd);
  } catch (...) {
    close(fd);
    throw;
  }
  fd_ = fd;
  size_ = size;
  uid_ = st.st_uid;
  direct_ = nonblocking_ = reopened_ = false;
}

SysResult ResolveRange(const FdRef& file, int64_t offset, int64_t length, const char* syscall,
                       ByteRange* out) {
  if (offset < 0) return SysResult::Fail(EINVAL, syscall);
  out->offset = offset;
  out->in_file = ClampRange(file.size(), offset, length < 0 ? INT64_MAX : length);
  out->length = length < 0 ? out->in_file : length;
  return SysResult::Ok(0);
}

}  // namespace pagewarm
