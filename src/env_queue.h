// The per-environment end of pagewarm: one for the main thread and one for
// each worker thread that loads the addon.
//
// Finished jobs are pushed here from any thread and settled on the
// environment's own event loop through a uv_async_t, inside a callback scope
// so promise reactions run at once. Teardown (worker.terminate(), process
// exit) goes through an async cleanup hook: the queue stops accepting
// results, cancels its jobs, closes its handle, and jobs that finish later
// are freed instead of settled. No thread-safe function is involved, so the
// TSFN/worker-teardown races of Node 20 (nodejs/node#55706) cannot occur.
#pragma once
#include <napi.h>
#include <uv.h>

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "job.h"

namespace pagewarm {

class EnvQueue : public std::enable_shared_from_this<EnvQueue> {
 public:
  // Creates the queue for env and registers its teardown. JS thread.
  static std::shared_ptr<EnvQueue> Create(Napi::Env env);
  ~EnvQueue();

  // Hands job to the pool and returns its promise. JS thread.
  Napi::Value Submit(Napi::Env env, Job* job);
  // Asks the job with this id to stop at its next slice. JS thread.
  void Cancel(uint32_t id);
  // The job with this id, until it is settled; null after. JS thread.
  const Job* Find(uint32_t id) const;
  // Called once per job when it is finished. Any thread.
  void Complete(Job* job);

 private:
  explicit EnvQueue(napi_env env) : env_(env) {}
  static void OnAsync(uv_async_t* handle);
  static void OnTeardown(napi_async_cleanup_hook_handle hook, void* arg);
  void SettleFinished();

  napi_env env_;
  uv_async_t* async_ = nullptr;
  napi_async_cleanup_hook_handle hook_ = nullptr;
  napi_async_context context_ = nullptr;
  napi_ref resource_ = nullptr;
  std::shared_ptr<EnvQueue> self_;  // keeps the queue alive until teardown

  std::mutex mu_;
  bool alive_ = true;           // guarded by mu_
  std::vector<Job*> finished_;  // guarded by mu_

  std::unordered_map<uint32_t, Job*> in_flight_;  // JS thread only
};

}  // namespace pagewarm
