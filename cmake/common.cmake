# Settings every launcher build shares (loaded with `cmake -C`). One compile serves
# llama-server, ggml-rpc-server, llama-bench and the Python bindings (shared libllama).
set(CMAKE_BUILD_TYPE Release CACHE STRING "")
set(BUILD_SHARED_LIBS ON CACHE BOOL "")
set(GGML_RPC ON CACHE BOOL "")
set(LLAMA_BUILD_TESTS OFF CACHE BOOL "")
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "")
# The server UI would be fetched from a model hub at configure time; launcher serves the API only.
set(LLAMA_USE_PREBUILT_UI OFF CACHE BOOL "")
set(LLAMA_OPENSSL OFF CACHE BOOL "")
set(LLAMA_CURL OFF CACHE BOOL "")
