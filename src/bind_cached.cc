// readCached / revalidate: the two calls behind serveFile's open-file cache
// (lib/http/serve.ts), made for the JS thread, where each microsecond is a
// request someone else waits for.
//
// readCached reads a range only if the page cache already holds it:
// preadv2(RWF_NOWAIT) copies what is cached and never waits for the disk
// (EAGAIN when the first page is missing, a short count when a later one
// is). One system call instead of the residency check (fcntl, fstat,
// cachestat) followed by a read, and no window between the check and the
// read in which reclaim could make the read wait.
//
// revalidate answers "does this path still name the file behind this cached
// descriptor, and is that file still inside root?" with stat(path) and
// readlink("/proc/self/fd/N"), filling a Float64Array instead of building a
// Stats object and two strings.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <string>

#include "addon.h"
#include "args.h"
#include "values.h"

namespace pagewarm {
namespace {

// Node's own arithmetic for Stats#mtimeMs, so the same file gives the same
// number (and the same ETag) whichever path described it.
double TimeMs(const struct timespec& ts) {
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Whether `real` is `root` or lies below it (both absolute, root without a
// trailing slash unless it is "/").
bool Inside(const std::string& real, const std::string& root) {
  if (real.empty() || real[0] != '/') return false;  // "(deleted)" names, anon inodes
  if (real.compare(0, root.size(), root) != 0) return false;
  if (real.size() == root.size()) return true;
  return root.back() == '/' || real[root.size()] == '/';
}

}  // namespace

// readCached(fd, buffer, offset, length, position) -> bytes | {errno, syscall}
// Reads into buffer[offset, offset + length) from the file at `position`,
// only what the page cache holds: EAGAIN when the first page is not cached.
Napi::Value Binding::ReadCached(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t offset, length, position;
  if (!ArgFd(info, 0, &fd) || !info[1].IsBuffer() || !ArgInt64(info, 2, &offset) ||
      !ArgInt64(info, 3, &length) || !ArgInt64(info, 4, &position)) {
    if (!env.IsExceptionPending()) {
      NAPI_THROW(Napi::TypeError::New(env, "pagewarm: expected a Buffer"), Napi::Value());
    }
    return Napi::Value();
  }
  Napi::Buffer<char> buffer = info[1].As<Napi::Buffer<char>>();
  if (offset < 0 || length < 0 || position < 0 ||
      static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > buffer.Length()) {
    NAPI_THROW(Napi::RangeError::New(env, "pagewarm: range outside the buffer"), Napi::Value());
  }
  if (fd == kNoFd) return SysErrorValue(env, SysResult::Fail(EBADF, "preadv2"));
  if (test_flags.no_nowait_reads) {
    return SysErrorValue(env, SysResult::Fail(EOPNOTSUPP, "preadv2"));
  }
  struct iovec iov = {buffer.Data() + offset, static_cast<size_t>(length)};
  ssize_t n;
  do {
    n = preadv2(fd, &iov, 1, position, RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return SysErrorValue(env, SysResult::Fail(errno, "preadv2"));
  return CountValue(env, n);
}

// revalidate(path, fd, realRoot | null, out: Float64Array(5))
//     -> 0 | 1 | {errno, syscall}
//   0: stat(path) succeeded; out = [dev, ino, size, mtimeMs, isFile (1/0)],
//      and with a realRoot, the file behind fd lies inside it
//   1: fd's file is not inside realRoot (moved out, or never was)
//   {errno, syscall}: stat(path) failed (syscall 'stat'), or the readlink
//      of fd's /proc entry did (syscall 'readlink')
// Comparing dev and ino with the cached descriptor's is the caller's part.
Napi::Value Binding::Revalidate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!info[0].IsString() || !ArgFd(info, 1, &fd) || !(info[2].IsString() || info[2].IsNull()) ||
      !info[3].IsTypedArray() ||
      info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[3].As<Napi::TypedArray>().ElementLength() < 5) {
    if (!env.IsExceptionPending()) {
      NAPI_THROW(Napi::TypeError::New(env, "pagewarm: bad revalidate arguments"), Napi::Value());
    }
    return Napi::Value();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.find('\0') != std::string::npos) {
    return SysErrorValue(env, SysResult::Fail(ENOENT, "stat"));
  }
  double* out = info[3].As<Napi::Float64Array>().Data();

  struct stat st;
  if (stat(path.c_str(), &st) != 0) return SysErrorValue(env, SysResult::Fail(errno, "stat"));
  out[0] = static_cast<double>(st.st_dev);
  out[1] = static_cast<double>(st.st_ino);
  out[2] = static_cast<double>(st.st_size);
  out[3] = TimeMs(st.st_mtim);
  out[4] = S_ISREG(st.st_mode) ? 1 : 0;

  if (info[2].IsNull()) return Napi::Number::New(env, 0);
  if (fd == kNoFd) return SysErrorValue(env, SysResult::Fail(EBADF, "readlink"));
  std::string root = info[2].As<Napi::String>().Utf8Value();
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char real[PATH_MAX + 1];
  ssize_t len = readlink(link, real, PATH_MAX);
  if (len < 0) return SysErrorValue(env, SysResult::Fail(errno, "readlink"));
  // A name as long as the buffer may have been cut: not known to be inside.
  if (len >= PATH_MAX) return Napi::Number::New(env, 1);
  return Napi::Number::New(env, Inside(std::string(real, static_cast<size_t>(len)), root) ? 0 : 1);
}

}  // namespace pagewarm
