// The binding object each environment gets: per-environment state lives here
// (Napi::Addon instance data), process-wide machinery in Pool.
//
// The TypeScript layer validates every argument; the checks here only keep a
// wrong call from crashing the process. Calls report failures as
// { errno, syscall } objects (returned by sync calls, used as the rejection
// reason by async ones), which lib/errors.ts shapes into Node-style errors.
#pragma once
#include <napi.h>

#include <memory>
#include <unordered_set>

#include "env_queue.h"

namespace pagewarm {

class Binding : public Napi::Addon<Binding> {
 public:
  Binding(Napi::Env env, Napi::Object exports);
  ~Binding();  // bind_send.cc: closes the pinned descriptors

  std::shared_ptr<EnvQueue> queue;
  // Descriptors from pin() / openFile() not yet unpinned. JS thread only.
  std::unordered_set<int> pinned;

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
  Napi::Value OpenFile(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Unpin(const Napi::CallbackInfo& info);
  // addon.cc
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Configure(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value ChunkSize(const Napi::CallbackInfo& info);
  Napi::Value Capabilities(const Napi::CallbackInfo& info);
  Napi::Value SetTestFlags(const Napi::CallbackInfo& info);
};

// setTestFlags({ noNowaitReads }) (bind_cached.cc).
void SetNoNowaitReads(bool on);

// Reads argument i as an integer-valued number; throws TypeError otherwise.
bool ArgInt64(const Napi::CallbackInfo& info, size_t i, int64_t* out);

}  // namespace pagewarm
