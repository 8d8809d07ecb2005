// The outcome of a system call, carried from a pagewarm thread back to JS.
// errno is positive here; the TypeScript layer shapes it into a Node-style
// error (code, negative errno, syscall) exactly once.
#pragma once
#include <cstdint>

namespace pagewarm {

struct SysResult {
  int64_t value = 0;         // bytes or pages, depending on the call
  int err = 0;               // 0 on success, else a positive errno
  const char* syscall = "";  // the call that failed, e.g. "sendfile"

  bool ok() const { return err == 0; }
  static SysResult Ok(int64_t v) {
    SysResult r;
    r.value = v;
    return r;
  }
  static SysResult Fail(int e, const char* sc) {
    SysResult r;
    r.err = e;
    r.syscall = sc;
    return r;
  }
};

}  // namespace pagewarm
