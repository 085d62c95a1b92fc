# The largest golden files (real tokenizers' tokenizer.json) are stored xz-compressed as
# <file>.xz: the repository stays small enough for the device tool, which copies the working tree
# (64 MiB limit). Configure unpacks each one beside itself (the unpacked copies are git-ignored),
# so tests, benches and scripts read the plain files as before. scripts/gpu-check.sh does the same
# on the device, where no configure runs.
find_program(SABLE_XZ xz REQUIRED)
file(GLOB_RECURSE _sable_packed_golden CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/golden/*.json.xz)
foreach(packed ${_sable_packed_golden})
  string(REGEX REPLACE "\\.xz$" "" plain "${packed}")
  # xz keeps the packed file's time on the unpacked one: equal times mean it is unpacked already
  # (IS_NEWER_THAN is true for equal times and would unpack 20 MB at every configure).
  set(stale TRUE)
  if(EXISTS "${plain}")
    file(TIMESTAMP "${packed}" packed_time "%s" UTC)
    file(TIMESTAMP "${plain}" plain_time "%s" UTC)
    if(NOT packed_time GREATER plain_time)
      set(stale FALSE)
    endif()
  endif()
  if(stale)
    execute_process(COMMAND ${SABLE_XZ} -dkf "${packed}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "could not unpack ${packed} (xz exit ${rc})")
    endif()
  endif()
endforeach()
