# Small functions that keep every module's CMakeLists.txt to a few lines.

# sable_module(<name> SOURCES ... [DEPS ...]): a static, position-independent library
# `sable_<name>` for one folder of core/. Headers are included as "core/<name>/x.h".
function(sable_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(sable_${name} STATIC ${ARG_SOURCES})
  target_include_directories(sable_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(sable_${name} PUBLIC sable_sdk ${ARG_DEPS})
  target_compile_options(sable_${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
endfunction()

# sable_plugin(<kind> <name> SOURCES ... [DEPS ...]): a plugin shared object in bin/plugins.
# Built with hidden visibility: only sable_plugin_entry is exported (SABLE_PLUGIN_EXPORT).
function(sable_plugin kind name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  set(target sable_${kind}_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE sable_sdk ${ARG_DEPS})
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME "sable-${kind}-${name}"
    CXX_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY ${SABLE_PLUGIN_OUTPUT_DIR})
  # Every symbol resolved at link time, except in sanitizer builds: clang links its sanitizer
  # runtime into the executable only, and the plugin's __asan_* / __tsan_* calls bind at load.
  if(NOT SABLE_SANITIZE)
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION bin/plugins)
  # The Python package carries every built-in plugin (python/CMakeLists.txt).
  set_property(GLOBAL APPEND PROPERTY SABLE_PLUGIN_TARGETS ${target})
endfunction()

# sable_unit_test(<name> LIBS ... [LABELS ...] [DATA_DIR]): tests/unit/<name>.cpp as a GoogleTest
# executable, each TEST registered with ctest. Tests find golden data under SABLE_TEST_DATA_DIR and
# built plugins under SABLE_PLUGIN_DIR. A test that calls GTEST_SKIP is reported as skipped.
function(sable_unit_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT SABLE_BUILD_TESTS)
    return()
  endif()
  if(NOT ARG_SOURCES)
    set(ARG_SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/${name}.cpp)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(${name} PRIVATE
    SABLE_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/golden"
    SABLE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    SABLE_PLUGIN_DIR="${SABLE_PLUGIN_OUTPUT_DIR}"
    SABLE_BINARY_DIR="${CMAKE_BINARY_DIR}")
  if(SABLE_SANITIZE)
    # Wall-clock bounds stretch in instrumented builds (tests/unit/time_budget.h).
    target_compile_definitions(${name} PRIVATE SABLE_SANITIZED_BUILD=1)
  endif()
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if("unit" IN_LIST ARG_LABELS)
    set_property(GLOBAL APPEND PROPERTY SABLE_UNIT_TEST_TARGETS ${name})
  endif()
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${ARG_LABELS}" SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
    DISCOVERY_TIMEOUT 60)
endfunction()
