#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace pagewarm {
namespace {

bool Fail(FileOutcome* out, int err, const char* syscall) {
  out->err = err;
  out->syscall = syscall;
  return true;
}

// The residency of the range into *before / *after style fields.
SysResult Query(const FdRef& file, int64_t offset, int64_t length, int64_t* resident,
                FileOutcome* out) {
  Residency r;
  SysResult q = QueryResidency(file, offset, length, &r);
  if (!q.ok()) return q;
  out->pages = r.pages;
  out->source = r.source;
  *resident = r.source == ResidencySource::kUnknown ? -1 : r.resident;
  return q;
}

}  // namespace

bool FileTask::Begin(const std::string& path, FilesOp op, const FilesRules& rules,
                     FileOutcome* out) {
  *out = FileOutcome();
  file_.reset();
  // A NUL inside the name would open a different, shorter one.
  if (path.find('\0') != std::string::npos) return Fail(out, ENOENT, "open");
  int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (rules.follow ? 0 : O_NOFOLLOW);
  int fd;
  do {
    fd = open(path.c_str(), flags);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Fail(out, errno, "open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return Fail(out, err, "fstat");
  }
  out->dev = static_cast<uint64_t>(st.st_dev);
  out->ino = static_cast<uint64_t>(st.st_ino);
  int64_t size = 0;
  int refused = 0;
  if (S_ISREG(st.st_mode)) {
    size = st.st_size;
  } else if (S_ISBLK(st.st_mode) && rules.block_devices) {
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) refused = errno;
    size = static_cast<int64_t>(bytes);
  } else {
    // What read or sendfile would say of it.
    refused = S_ISDIR(st.st_mode) ? EISDIR
              : (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) ? ESPIPE
                                                                 : EINVAL;
  }
  if (refused != 0) {
    close(fd);
    return Fail(out, refused, refused == EISDIR || refused == ESPIPE || refused == EINVAL ? "read" : "ioctl");
  }
  out->size = size;
  if (rules.max_size >= 0 && size > rules.max_size) {
    close(fd);
    out->err = kSkippedTooLarge;
    return true;
  }
  file_.reset(new FdRef());
  file_->Own(fd, st, size);

  offset_ = rules.offset;
  out->bytes = ClampRange(size, rules.offset, rules.length < 0 ? INT64_MAX : rules.length);
  SysResult r = Query(*file_, rules.offset, out->bytes, &out->resident_before, out);
  if (!r.ok()) return Fail(out, r.err, r.syscall);
  if (op == FilesOp::kResidency) {
    out->resident_after = out->resident_before;
    return true;
  }
  if (op == FilesOp::kEvict) {
    if (out->bytes > 0) {
      int err = posix_fadvise(file_->fd(), rules.offset, out->bytes, POSIX_FADV_DONTNEED);
      if (err != 0) return Fail(out, err, "posix_fadvise");
    }
    r = Query(*file_, rules.offset, out->bytes, &out->resident_after, out);
    if (!r.ok()) return Fail(out, r.err, r.syscall);
    return true;
  }
  // Warm: every page is read (see WarmChunk), in Continue().
  left_ = out->bytes;
  if (left_ == 0) {
    out->resident_after = out->resident_before < 0 ? -1 : out->pages;
    return true;
  }
  return false;
}

bool FileTask::Continue(int64_t chunk, WarmState* state, FileOutcome* out) {
  bool eof = false;
  SysResult r = WarmChunk(*file_, state, offset_, std::min(chunk, left_), &eof);
  if (!r.ok()) return Fail(out, r.err, r.syscall);
  offset_ += r.value;
  left_ -= r.value;
  if (eof || left_ <= 0) {
    // Every page of the range was read: resident now (a file that shrank
    // meanwhile has fewer).
    out->resident_after = out->source == ResidencySource::kUnknown ? -1 : out->pages;
    return true;
  }
  return false;
}

}  // namespace pagewarm
