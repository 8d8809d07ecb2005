// The binding object each environment gets: per-environment state lives here
// (Napi::Addon instance data), process-wide machinery in Pool.
//
// The TypeScript layer validates every argument; the checks here (args.h)
// only keep a wrong call from crashing the process. Calls report failures
// as { errno, syscall } objects (returned by sync calls, used as the
// rejection reason by async ones), which lib/core/errors.ts shapes into
// Node-style errors.
#pragma once
#include <napi.h>

#include <memory>

#include "env_queue.h"
#include "fd_ref.h"

namespace pagewarm {

// Switches that only tests turn on, set by _testOnlySetFlags(). They belong
// to one environment: a worker that sets one changes nothing for the main
// thread or other workers. A job copies what it needs when it is made, so
// the pool thread running it reads its own environment's setting.
struct TestFlags {
  // Warm every range by read(2), as where splice is unsupported.
  bool force_read_fallback = false;
  // readCached answers EOPNOTSUPP, as on a file system that cannot read
  // without waiting, so tests reach its caller's other path.
  bool no_nowait_reads = false;
};

class Binding : public Napi::Addon<Binding> {
 public:
  Binding(Napi::Env env, Napi::Object exports);

  std::shared_ptr<EnvQueue> queue;
  // Descriptors from pin() / openFile() not yet unpinned. JS thread only.
  PinnedFds pinned;
  TestFlags test_flags;  // JS thread only

 private:
  // bind_warm.cc
  Napi::Value Warm(const Napi::CallbackInfo& info);
  Napi::Value WarmSync(const Napi::CallbackInfo& info);
  // bind_residency.cc
  Napi::Value Residency(const Napi::CallbackInfo& info);
  Napi::Value ResidencySync(const Napi::CallbackInfo& info);
  Napi::Value Advise(const Napi::CallbackInfo& info);
  // bind_cached.cc
  Napi::Value ReadCached(const Napi::CallbackInfo& info);
  Napi::Value Revalidate(const Napi::CallbackInfo& info);
  // bind_send.cc
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value SendSync(const Napi::CallbackInfo& info);
  // bind_files.cc
  Napi::Value Files(const Napi::CallbackInfo& info);
  Napi::Value NewBudget(const Napi::CallbackInfo& info);
  Napi::Value BudgetLimit(const Napi::CallbackInfo& info);
  // bind_fds.cc
  Napi::Value OpenFile(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Unpin(const Napi::CallbackInfo& info);
  // addon.cc
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Progress(const Napi::CallbackInfo& info);
  Napi::Value Configure(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value ChunkSize(const Napi::CallbackInfo& info);
  Napi::Value Capabilities(const Napi::CallbackInfo& info);
  Napi::Value TestOnlySetFlags(const Napi::CallbackInfo& info);
};

}  // namespace pagewarm
