include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
# NVIDIA GPUs. CMAKE_CUDA_ARCHITECTURES is passed by launcher when build.cuda_architectures is set.
set(GGML_CUDA ON CACHE BOOL "")
