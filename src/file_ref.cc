#include "file_ref.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pagewarm {

FileRef::~FileRef() {
  if (owned_) close(fd_);
}

SysResult FileRef::Open(int64_t user_fd, const char* syscall, bool reopen_direct) {
  SysResult r = Inspect(user_fd, syscall);
  if (!r.ok()) return r;
  return Adopt(syscall, reopen_direct);
}

SysResult FileRef::Inspect(int64_t user_fd, const char* syscall) {
  if (!FdInRange(user_fd)) return SysResult::Fail(EBADF, syscall);
  fd_ = static_cast<int>(user_fd);
  return Check(syscall);
}

SysResult FileRef::Adopt(const char* syscall, bool reopen_direct) {
  int fd = fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return SysResult::Fail(errno, syscall);
  fd_ = fd;
  owned_ = true;
  if (reopen_direct && direct_) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int buffered = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (buffered < 0) return SysResult::Fail(errno, syscall);  // the operation's call, as for every check
    close(fd_);
    fd_ = buffered;
    reopened_ = true;
  }
  return SysResult::Ok(0);
}

SysResult FileRef::Check(const char* syscall) {
  int flags = fcntl(fd_, F_GETFL);
  if (flags < 0) return SysResult::Fail(errno, syscall);
  if ((flags & O_PATH) || (flags & O_ACCMODE) == O_WRONLY)
    return SysResult::Fail(EBADF, syscall);  // what read/sendfile would say
  direct_ = (flags & O_DIRECT) != 0;

  struct stat st;
  if (fstat(fd_, &st) != 0) return SysResult::Fail(errno, syscall);
  uid_ = st.st_uid;
  if (S_ISDIR(st.st_mode)) return SysResult::Fail(EISDIR, syscall);
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
    return SysResult::Fail(ESPIPE, syscall);
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

}  // namespace pagewarm
