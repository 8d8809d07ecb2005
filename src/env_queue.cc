#include "env_queue.h"
#include "stats.h"

#include <string>

#include "pool.h"
#include "values.h"

namespace pagewarm {

std::shared_ptr<EnvQueue> EnvQueue::Create(Napi::Env env) {
  std::shared_ptr<EnvQueue> q(new EnvQueue(env));
  uv_loop_t* loop = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_get_uv_event_loop(env, &loop), nullptr);

  // Every step is checked, and a failure undoes the steps before it: a
  // queue without its resource, async context or teardown hook would settle
  // into a null scope, or outlive its environment and be touched after.
  napi_status status = napi_ok;
  Napi::Object resource = Napi::Object::New(env);
  status = napi_create_reference(env, resource, 1, &q->resource_);
  if (status != napi_ok) NAPI_THROW_IF_FAILED(env, status, nullptr);
  status = napi_async_init(env, resource, Napi::String::New(env, "pagewarm"), &q->context_);
  if (status != napi_ok) {
    napi_delete_reference(env, q->resource_);
    NAPI_THROW_IF_FAILED(env, status, nullptr);
  }

  q->async_ = new uv_async_t();
  int rc = uv_async_init(loop, q->async_, OnAsync);
  if (rc != 0) {
    delete q->async_;
    napi_async_destroy(env, q->context_);
    napi_delete_reference(env, q->resource_);
    NAPI_THROW(
        Napi::Error::New(env, std::string("pagewarm: uv_async_init failed: ") + uv_strerror(rc)),
        nullptr);
  }
  q->async_->data = q.get();
  uv_unref(reinterpret_cast<uv_handle_t*>(q->async_));  // ref'd while jobs run

  status = napi_add_async_cleanup_hook(env, OnTeardown, q.get(), &q->hook_);
  if (status != napi_ok) {
    // Without the hook nothing would close the handle at teardown: close it
    // now. Its callback frees it; nothing else refers to q yet.
    uv_close(reinterpret_cast<uv_handle_t*>(q->async_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_async_t*>(handle); });
    napi_async_destroy(env, q->context_);
    napi_delete_reference(env, q->resource_);
    NAPI_THROW_IF_FAILED(env, status, nullptr);
  }

  q->self_ = q;
  Pool::Get().Acquire();
  return q;
}

EnvQueue::~EnvQueue() = default;

Napi::Value EnvQueue::Submit(Napi::Env env, Job* job) {
  std::unique_ptr<Job> owned(job);
  if (in_flight_.count(job->id)) {
    NAPI_THROW(Napi::RangeError::New(env, "pagewarm: job id in use"), Napi::Value());
  }
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &job->deferred, &promise), Napi::Value());
  job->owner = shared_from_this();

  if (in_flight_.empty()) uv_ref(reinterpret_cast<uv_handle_t*>(async_));
  in_flight_[job->id] = job;
  job->queued_ns = SteadyNs();
  Count(Counters().jobs);
  SysResult r = Pool::Get().Submit(job);
  if (!r.ok()) {
    in_flight_.erase(job->id);
    if (in_flight_.empty()) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
    napi_reject_deferred(env, job->deferred, SysErrorValue(env, r));
    return Napi::Value(env, promise);
  }
  owned.release();  // the pool owns it until Complete()
  return Napi::Value(env, promise);
}

void EnvQueue::Cancel(uint32_t id) {
  auto it = in_flight_.find(id);
  if (it != in_flight_.end()) it->second->Cancel();
}

const Job* EnvQueue::Find(uint32_t id) const {
  auto it = in_flight_.find(id);
  return it == in_flight_.end() ? nullptr : it->second;
}

void EnvQueue::Complete(Job* job) {
  std::shared_ptr<EnvQueue> hold = job->owner;  // job may hold the last ref
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (alive_) {
      finished_.push_back(job);
      uv_async_send(async_);
      return;
    }
  }
  delete job;  // its environment is gone: nothing to settle
}

void EnvQueue::OnAsync(uv_async_t* handle) {
  static_cast<EnvQueue*>(handle->data)->SettleFinished();
}

void EnvQueue::SettleFinished() {
  std::vector<Job*> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(finished_);
  }
  if (batch.empty()) return;

  napi_handle_scope handles = nullptr;
  napi_open_handle_scope(env_, &handles);
  napi_value resource = nullptr;
  napi_get_reference_value(env_, resource_, &resource);
  // A callback scope runs the promise reactions (and nextTicks) on close,
  // as for any other libuv callback that enters JS.
  napi_callback_scope scope = nullptr;
  if (resource != nullptr) napi_open_callback_scope(env_, resource, context_, &scope);

  for (Job* job : batch) {
    in_flight_.erase(job->id);
    try {
      job->Settle(Napi::Env(env_), job->deferred);
    } catch (...) {
      // The environment is stopping (worker.terminate()): nothing to settle.
    }
    delete job;
  }

  if (scope != nullptr) napi_close_callback_scope(env_, scope);
  if (handles != nullptr) napi_close_handle_scope(env_, handles);
  if (in_flight_.empty()) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
}

void EnvQueue::OnTeardown(napi_async_cleanup_hook_handle, void* arg) {
  EnvQueue* q = static_cast<EnvQueue*>(arg);
  std::vector<Job*> unsettled;
  {
    std::lock_guard<std::mutex> lock(q->mu_);
    // Cancel before alive_ goes false, under the lock: from then on a job
    // that completes is freed by Complete() on its pool thread at once, so
    // in_flight_'s pointers must not be touched after this block.
    for (auto& entry : q->in_flight_) entry.second->Cancel();
    q->alive_ = false;
    unsettled.swap(q->finished_);
  }
  q->in_flight_.clear();  // the pool still owns these; Complete() frees them
  Pool::Get().Nudge();    // parked sends notice their cancellation now
  for (Job* job : unsettled) delete job;

  napi_async_destroy(q->env_, q->context_);
  napi_delete_reference(q->env_, q->resource_);

  uv_close(reinterpret_cast<uv_handle_t*>(q->async_), [](uv_handle_t* handle) {
    EnvQueue* q = static_cast<EnvQueue*>(handle->data);
    delete reinterpret_cast<uv_async_t*>(handle);
    napi_remove_async_cleanup_hook(q->hook_);
    Pool::Get().Release();
    q->self_.reset();  // may free q: touch nothing after this
  });
}

}  // namespace pagewarm
