include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
# Ascend NPUs through CANN (>= 8.0.RC2). Needs the toolkit environment (set_env.sh).
# SOC_TYPE and the graph-mode flag are passed by launcher.
set(GGML_CANN ON CACHE BOOL "")
# The Ascend guide's verified build line (Kunpeng 920 + 910B3) passes -O2; Release appends its own
# -O3 after it, exactly as it does for the guide.
set(GGML_CUDA OFF CACHE BOOL "")
set(CMAKE_C_FLAGS "-O2" CACHE STRING "")
set(CMAKE_CXX_FLAGS "-O2" CACHE STRING "")
