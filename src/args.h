// Reading the binding's arguments.
//
// The TypeScript layer validates every argument; these helpers only keep a
// wrong call from crashing the process or naming the wrong descriptor. Each
// returns false with a JS exception pending (TypeError or RangeError), and
// the caller returns an empty Napi::Value:
//
//   int fd;
//   int64_t offset;
//   if (!ArgFd(info, 0, &fd) || !ArgInt64(info, 1, &offset)) return Napi::Value();
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace pagewarm {

// What a descriptor argument outside [0, INT32_MAX] becomes: no descriptor
// has that number, so every call the binding makes with it is EBADF.
constexpr int kNoFd = -1;

// A safe integer (a Number with no fraction, |n| <= 2^53 - 1). Bounding every
// number to 2^53 keeps `offset + length` and `size - offset` from overflowing.
bool ArgInt64(const Napi::CallbackInfo& info, size_t i, int64_t* out);

// A descriptor number: a safe integer, then range-checked here and nowhere
// else. Descriptors are ints, and a cast would make 2^32 + 3 name descriptor
// 3: a number outside [0, INT32_MAX] is read as kNoFd instead.
bool ArgFd(const Napi::CallbackInfo& info, size_t i, int* out);

// The id a job is cancelled by: its number's low 32 bits.
bool ArgJobId(const Napi::CallbackInfo& info, size_t i, uint32_t* out);

// A string (UTF-8); anything else is a TypeError with `message`.
bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* message, std::string* out);

}  // namespace pagewarm
