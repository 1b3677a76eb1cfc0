include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
# GGML_NATIVE is set by launcher (build.native). On x86-64 native builds launcher also adds
# -mno-amx-*: some VMs report AMX in CPUID but fault on it (SIGILL on `tilezero`).
