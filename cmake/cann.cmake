include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
# Ascend NPUs through CANN (>= 8.0.RC2). Needs the toolkit environment (set_env.sh).
# SOC_TYPE and the graph-mode flag are passed by launcher.
set(GGML_CANN ON CACHE BOOL "")
