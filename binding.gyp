{
  "targets": [
    {
      "target_name": "pagewarm",
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "src/addon.cc",
            "src/args.cc",
            "src/bind_cached.cc",
            "src/bind_fds.cc",
            "src/bind_files.cc",
            "src/bind_residency.cc",
            "src/bind_send.cc",
            "src/bind_warm.cc",
            "src/env_queue.cc",
            "src/fd_ref.cc",
            "src/files.cc",
            "src/job.cc",
            "src/pool.cc",
            "src/poller.cc",
            "src/residency.cc",
            "src/send_io.cc",
            "src/send_job.cc",
            "src/stats.cc",
            "src/values.cc",
            "src/warm.cc"
          ]
        }, {
          # Elsewhere the TypeScript fallback serves the whole API.
          "sources": ["src/unsupported.cc"]
        }]
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        # A worker being terminated cannot take a JS exception: swallow it
        # instead of throwing a C++ exception out of the callback (std::terminate).
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "_FILE_OFFSET_BITS=64",
        "_GNU_SOURCE"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } }
    }
  ]
}
