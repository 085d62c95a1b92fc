# A few unit suites built a second time under a sanitizer inside the normal build, so that
# `make test` (and CI, which has no time for the full `make test-sanitize`) runs them: the modules
# they test are compiled again, instrumented, into one static library per sanitizer. The full pass
# over every suite is `make test-sanitize` (docs/testing.md).
include_guard(GLOBAL)
include(SableFuzz)  # sable_fuzz_sources_of

# Link inputs of `modules` that are not among them (third-party libraries, interface targets),
# into `out_var`: what the instrumented copy must link instead of the modules themselves.
function(_sable_sanitized_external_libs out_var)
  set(libs "")
  foreach(m ${ARGN})
    foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(deps ${m} ${prop})
      foreach(d ${deps})
        if(d AND NOT d IN_LIST ARGN AND NOT d MATCHES "^\\$<")
          list(APPEND libs ${d})
        endif()
      endforeach()
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES libs)
  set(${out_var} ${libs} PARENT_SCOPE)
endfunction()

# sable_sanitized_suites(<address|thread> TESTS <suite>... MODULES <sable_ module>...):
# tests/unit/<suite>.cpp linked with MODULES' sources, all built with -fsanitize=<address,undefined>
# or <thread>, and registered as ctest test <suite>_asan or <suite>_tsan (labels unit, sanitize;
# one test per suite: the whole GoogleTest binary). A report fails the test.
function(sable_sanitized_suites sanitizer)
  cmake_parse_arguments(ARG "" "" "TESTS;MODULES" ${ARGN})
  if(NOT SABLE_BUILD_TESTS OR SABLE_SANITIZE)  # a sanitizer build runs every suite instrumented
    return()
  endif()
  if(sanitizer STREQUAL "thread")
    set(suffix tsan)
    set(flags -fsanitize=thread)
    set(env "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")
  else()
    set(suffix asan)
    set(flags -fsanitize=address,undefined -fno-sanitize-recover=undefined)
    set(env "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" "ASAN_OPTIONS=detect_leaks=1")
  endif()
  set(lib sable_sanitized_${suffix})
  sable_fuzz_sources_of(sources ${ARG_MODULES})
  _sable_sanitized_external_libs(external ${ARG_MODULES})
  add_library(${lib} STATIC ${sources})
  target_include_directories(${lib} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${lib} PUBLIC ${external})
  target_compile_options(${lib} PUBLIC ${flags} -fno-omit-frame-pointer -O1 -g)
  target_link_options(${lib} PUBLIC ${flags})
  foreach(suite ${ARG_TESTS})
    set(exe ${suite}_${suffix})
    add_executable(${exe} ${PROJECT_SOURCE_DIR}/tests/unit/${suite}.cpp)
    target_link_libraries(${exe} PRIVATE ${lib} GTest::gtest GTest::gtest_main)
    set_target_properties(${exe} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
    add_test(NAME ${exe} COMMAND ${exe})
    set_tests_properties(${exe} PROPERTIES LABELS "unit;sanitize" ENVIRONMENT "${env}" TIMEOUT 600)
  endforeach()
endfunction()
