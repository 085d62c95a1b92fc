# libFuzzer targets that run in ctest for a bounded time, whatever the project compiler is.
# libFuzzer (-fsanitize=fuzzer) exists only in clang. With a clang project compiler the fuzz target
# is a normal executable; with gcc (the default build, `make test`, CI) the sources are compiled
# again, instrumented, by a clang++ found on the PATH (Debian: packages clang + libclang-rt-dev,
# see scripts/install-deps.sh) through a custom command, outside the normal targets. Without a
# working libFuzzer the target and its test are left out with a status message.
include_guard(GLOBAL)

# Decides once per build tree how fuzz targets are built: SABLE_FUZZ_MODE is "native" (project
# compiler), "clang" (SABLE_CLANGXX) or "" (none).
function(_sable_fuzz_probe)
  if(DEFINED SABLE_FUZZ_MODE)
    return()
  endif()
  set(probe_src "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n")
  set(mode "")
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    include(CheckCXXSourceCompiles)
    set(CMAKE_REQUIRED_FLAGS -fsanitize=fuzzer)
    check_cxx_source_compiles("${probe_src}" SABLE_HAVE_LIBFUZZER)
    unset(CMAKE_REQUIRED_FLAGS)
    if(SABLE_HAVE_LIBFUZZER)
      set(mode native)
    endif()
  else()
    find_program(SABLE_CLANGXX NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14)
    if(SABLE_CLANGXX)
      file(WRITE ${CMAKE_BINARY_DIR}/fuzz/libfuzzer_probe.cpp "${probe_src}")
      execute_process(COMMAND ${SABLE_CLANGXX} -fsanitize=fuzzer ${CMAKE_BINARY_DIR}/fuzz/libfuzzer_probe.cpp
                              -o ${CMAKE_BINARY_DIR}/fuzz/libfuzzer_probe
                      RESULT_VARIABLE probe OUTPUT_QUIET ERROR_QUIET)
      if(probe EQUAL 0)
        set(mode clang)
      endif()
    endif()
  endif()
  if(mode STREQUAL "")
    message(STATUS "Sable: no clang with libFuzzer (-fsanitize=fuzzer): fuzz tests are not built")
  elseif(mode STREQUAL "clang")
    message(STATUS "Sable: fuzz targets built with ${SABLE_CLANGXX}")
  endif()
  set(SABLE_FUZZ_MODE "${mode}" CACHE INTERNAL "How libFuzzer targets are built: native, clang or empty")
endfunction()

# Command-line flags (-I, -D, link inputs) for an external compiler from the targets in `libs`.
# Handles imported targets (pkg-config, header-only packages), Threads::Threads and sable_sdk.
function(_sable_fuzz_flags_from_targets out_var)
  set(flags "")
  foreach(lib ${ARGN})
    if(lib STREQUAL "Threads::Threads")
      list(APPEND flags -pthread)
      continue()
    endif()
    if(NOT TARGET ${lib})
      list(APPEND flags ${lib})  # a plain library path or flag
      continue()
    endif()
    get_target_property(incs ${lib} INTERFACE_INCLUDE_DIRECTORIES)
    foreach(d ${incs})
      string(REGEX REPLACE "^\\$<BUILD_INTERFACE:(.*)>$" "\\1" d "${d}")
      if(d AND NOT d MATCHES "^\\$<" AND NOT d STREQUAL "/usr/include")
        list(APPEND flags -I${d})
      endif()
    endforeach()
    get_target_property(opts ${lib} INTERFACE_COMPILE_OPTIONS)
    if(opts)
      list(APPEND flags ${opts})
    endif()
    get_target_property(defs ${lib} INTERFACE_COMPILE_DEFINITIONS)
    foreach(d ${defs})  # generator expressions (nlohmann_json's) are left out
      if(d AND NOT d MATCHES "\\$<")
        list(APPEND flags -D${d})
      endif()
    endforeach()
    get_target_property(links ${lib} INTERFACE_LINK_LIBRARIES)
    foreach(l ${links})
      if(l AND NOT TARGET ${l} AND NOT l MATCHES "^\\$<")
        list(APPEND flags ${l})
      endif()
    endforeach()
  endforeach()
  set(${out_var} ${flags} PARENT_SCOPE)
endfunction()

# sable_fuzz_test(<name> SOURCES ... [LIBS ...] [DEFINITIONS ...] [SEEDS dir] [DICT file]
#                 [TIME seconds] [RSS_MB mb] [LABELS ...]):
# builds the libFuzzer executable tests/<name> from SOURCES (the fuzz entry point plus the module
# sources, compiled instrumented so that libFuzzer sees their coverage) and registers ctest test
# <name>, which fuzzes for TIME seconds (default 20). New inputs go to build/fuzz/<name>_corpus;
# the seed folder in the source tree is only read.
function(sable_fuzz_test name)
  cmake_parse_arguments(ARG "" "SEEDS;DICT;TIME;RSS_MB" "SOURCES;LIBS;DEFINITIONS;LABELS" ${ARGN})
  if(NOT SABLE_BUILD_TESTS)
    return()
  endif()
  _sable_fuzz_probe()
  if(NOT SABLE_FUZZ_MODE)
    return()
  endif()
  if(NOT ARG_TIME)
    set(ARG_TIME 20)
  endif()
  if(NOT ARG_RSS_MB)
    set(ARG_RSS_MB 2048)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit fuzz)
  endif()
  set(flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -g -O1)
  set(bin ${CMAKE_BINARY_DIR}/tests/${name})
  if(SABLE_FUZZ_MODE STREQUAL "native")
    add_executable(${name} ${ARG_SOURCES})
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
    target_compile_options(${name} PRIVATE ${flags})
    target_link_options(${name} PRIVATE ${flags})
    target_link_libraries(${name} PRIVATE ${ARG_LIBS})
    target_compile_definitions(${name} PRIVATE ${ARG_DEFINITIONS})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  else()
    _sable_fuzz_flags_from_targets(lib_flags ${ARG_LIBS})
    list(TRANSFORM ARG_DEFINITIONS PREPEND -D OUTPUT_VARIABLE def_flags)
    # Rebuild when a source or a header next to one changes (Ninja has no IMPLICIT_DEPENDS).
    set(deps ${ARG_SOURCES})
    foreach(src ${ARG_SOURCES})
      get_filename_component(dir ${src} DIRECTORY)
      file(GLOB hdrs ${dir}/*.h)
      list(APPEND deps ${hdrs})
    endforeach()
    list(REMOVE_DUPLICATES deps)
    add_custom_command(
      OUTPUT ${bin}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/tests
      COMMAND ${SABLE_CLANGXX} -std=c++20 ${flags} -I${PROJECT_SOURCE_DIR} ${def_flags}
              ${ARG_SOURCES} ${lib_flags} -o ${bin}
      DEPENDS ${deps}
      COMMENT "Building ${name} with ${SABLE_CLANGXX} (libFuzzer)"
      VERBATIM)
    add_custom_target(${name} ALL DEPENDS ${bin})
  endif()
  set(work ${CMAKE_BINARY_DIR}/fuzz/${name}_corpus)
  file(MAKE_DIRECTORY ${work})
  set(args -max_total_time=${ARG_TIME} -timeout=10 -rss_limit_mb=${ARG_RSS_MB})
  if(ARG_DICT)
    list(APPEND args -dict=${ARG_DICT})
  endif()
  add_test(NAME ${name} COMMAND ${bin} ${args} ${work} ${ARG_SEEDS})
  math(EXPR timeout "${ARG_TIME} + 100")
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${timeout})
endfunction()
