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

# Command-line flags for an external compiler from the targets in ARGN: compile flags (-I, -D,
# options) into `compile_var`, link inputs into `link_var`. Follows INTERFACE_LINK_LIBRARIES into
# other targets; handles imported targets (pkg-config, CMake packages: the library file is their
# IMPORTED_LOCATION), header-only packages, Threads::Threads and the project's interface targets.
function(_sable_fuzz_flags_from_targets compile_var link_var)
  set(cflags "")
  set(lflags "")
  set(pending ${ARGN})
  set(seen "")
  while(pending)
    list(POP_FRONT pending lib)
    if(lib IN_LIST seen OR lib MATCHES "^\\$<")
      continue()
    endif()
    list(APPEND seen ${lib})
    if(lib STREQUAL "Threads::Threads")
      list(APPEND cflags -pthread)
      list(APPEND lflags -pthread)
      continue()
    endif()
    if(NOT TARGET ${lib})
      list(APPEND lflags ${lib})  # a plain library path or flag
      continue()
    endif()
    get_target_property(incs ${lib} INTERFACE_INCLUDE_DIRECTORIES)
    foreach(d ${incs})
      string(REGEX REPLACE "^\\$<BUILD_INTERFACE:(.*)>$" "\\1" d "${d}")
      if(d AND NOT d MATCHES "^\\$<" AND NOT d STREQUAL "/usr/include")
        list(APPEND cflags -I${d})
      endif()
    endforeach()
    get_target_property(opts ${lib} INTERFACE_COMPILE_OPTIONS)
    if(opts)
      list(APPEND cflags ${opts})
    endif()
    get_target_property(defs ${lib} INTERFACE_COMPILE_DEFINITIONS)
    foreach(d ${defs})  # generator expressions (nlohmann_json's) are left out
      if(d AND NOT d MATCHES "\\$<")
        list(APPEND cflags -D${d})
      endif()
    endforeach()
    get_target_property(imported ${lib} IMPORTED)
    get_target_property(type ${lib} TYPE)
    if(imported AND NOT type STREQUAL "INTERFACE_LIBRARY")
      get_target_property(loc ${lib} IMPORTED_LOCATION)
      if(NOT loc)
        get_target_property(configs ${lib} IMPORTED_CONFIGURATIONS)
        foreach(c ${configs})
          get_target_property(loc ${lib} IMPORTED_LOCATION_${c})
          if(loc)
            break()
          endif()
        endforeach()
      endif()
      if(loc)
        list(APPEND lflags ${loc})
      endif()
    endif()
    get_target_property(links ${lib} INTERFACE_LINK_LIBRARIES)
    foreach(l ${links})
      if(l AND NOT l MATCHES "^\\$<")
        list(APPEND pending ${l})
      endif()
    endforeach()
  endwhile()
  set(${compile_var} ${cflags} PARENT_SCOPE)
  set(${link_var} ${lflags} PARENT_SCOPE)
endfunction()

# The source files of the given targets as absolute paths, into `out_var` (to compile a module's
# sources into a fuzz target).
function(sable_fuzz_sources_of out_var)
  set(all "")
  foreach(t ${ARGN})
    get_target_property(srcs ${t} SOURCES)
    get_target_property(dir ${t} SOURCE_DIR)
    foreach(src ${srcs})
      if(NOT IS_ABSOLUTE ${src})
        set(src ${dir}/${src})
      endif()
      list(APPEND all ${src})
    endforeach()
  endforeach()
  set(${out_var} ${all} PARENT_SCOPE)
endfunction()

# sable_fuzz_test(<name> SOURCES ... [LIBS ...] [DEFINITIONS ...] [INCLUDES ...] [SEEDS dir]
#                 [DICT file] [TIME seconds] [RSS_MB mb] [LABELS ...]):
# builds the libFuzzer executable tests/<name> from SOURCES (the fuzz entry point plus the module
# sources, compiled instrumented so that libFuzzer sees their coverage) and registers ctest test
# <name>, which fuzzes for TIME seconds (default 20). New inputs go to build/fuzz/<name>_corpus,
# a crashing input to build/fuzz/crashes/<name>-crash-*; the seed folder in the source tree is only
# read (tests/fuzz/README.md: long runs, and keeping a fixed crasher as a seed).
function(sable_fuzz_test name)
  cmake_parse_arguments(ARG "" "SEEDS;DICT;TIME;RSS_MB" "SOURCES;LIBS;DEFINITIONS;INCLUDES;LABELS"
                        ${ARGN})
  if(NOT SABLE_BUILD_TESTS)
    return()
  endif()
  # A sanitizer build (SABLE_SANITIZE) leaves them out: they are sanitized builds already.
  if(SABLE_SANITIZE)
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
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${ARG_INCLUDES})
    target_compile_options(${name} PRIVATE ${flags})
    target_link_options(${name} PRIVATE ${flags})
    target_link_libraries(${name} PRIVATE ${ARG_LIBS})
    target_compile_definitions(${name} PRIVATE ${ARG_DEFINITIONS})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  else()
    _sable_fuzz_flags_from_targets(lib_cflags lib_lflags ${ARG_LIBS})
    list(TRANSFORM ARG_DEFINITIONS PREPEND -D OUTPUT_VARIABLE def_flags)
    list(TRANSFORM ARG_INCLUDES PREPEND -I OUTPUT_VARIABLE inc_flags)
    # One compile per source (Ninja runs them in parallel, ccache keeps them), then one link.
    # The depfile (-MD) rebuilds an object when a header it includes changes.
    set(launcher "")
    if(SABLE_CCACHE)
      set(launcher ${SABLE_CCACHE})
    endif()
    set(objs "")
    foreach(src ${ARG_SOURCES})
      file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${src})
      set(obj ${CMAKE_BINARY_DIR}/fuzz/${name}.obj/${rel}.o)
      get_filename_component(obj_dir ${obj} DIRECTORY)
      file(MAKE_DIRECTORY ${obj_dir})
      add_custom_command(
        OUTPUT ${obj}
        COMMAND ${launcher} ${SABLE_CLANGXX} -std=c++20 ${flags} -I${PROJECT_SOURCE_DIR} ${inc_flags}
                ${def_flags} ${lib_cflags} -MD -MF ${obj}.d -c ${src} -o ${obj}
        DEPENDS ${src}
        DEPFILE ${obj}.d
        COMMENT "Compiling ${rel} for ${name} with ${SABLE_CLANGXX} (libFuzzer)"
        VERBATIM)
      list(APPEND objs ${obj})
    endforeach()
    add_custom_command(
      OUTPUT ${bin}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/tests
      COMMAND ${SABLE_CLANGXX} ${flags} ${objs} ${lib_lflags} -o ${bin}
      DEPENDS ${objs}
      COMMENT "Linking ${name} (libFuzzer)"
      VERBATIM)
    add_custom_target(${name} ALL DEPENDS ${bin})
  endif()
  set(work ${CMAKE_BINARY_DIR}/fuzz/${name}_corpus)
  file(MAKE_DIRECTORY ${work})
  file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz/crashes)
  set(args -max_total_time=${ARG_TIME} -timeout=10 -rss_limit_mb=${ARG_RSS_MB}
      -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz/crashes/${name}- -print_final_stats=1)
  if(ARG_DICT)
    list(APPEND args -dict=${ARG_DICT})
  endif()
  add_test(NAME ${name} COMMAND ${bin} ${args} ${work} ${ARG_SEEDS})
  math(EXPR timeout "${ARG_TIME} + 100")
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${timeout})
endfunction()
