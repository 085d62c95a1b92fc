# Out-of-tree plugin round trip (ctest, `cmake -P`): install the SDK alone into a temporary prefix,
# build examples/hello_plugin against it with find_package(SableSDK), and check that
# `sable plugins` lists it when its folder is given by --plugin-dirs, by a YAML config's
# plugin_dirs, and by SABLE_PLUGIN_PATH.
#   -DSOURCE_DIR=<repo> -DSABLE=<path of the sable binary> -DWORK_DIR=<scratch> -DVERSION=<x.y.z>
#   -DGENERATOR=<cmake generator>
foreach(var SOURCE_DIR SABLE WORK_DIR VERSION GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "example_roundtrip.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/sdk_project)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

# 1. The SDK on its own, as a third party would install it.
file(WRITE ${WORK_DIR}/sdk_project/CMakeLists.txt
  "cmake_minimum_required(VERSION 3.22)\n"
  "project(SableSDK VERSION ${VERSION} LANGUAGES C CXX)\n"
  "add_subdirectory(${SOURCE_DIR}/sdk sdk)\n")
run(${CMAKE_COMMAND} -S ${WORK_DIR}/sdk_project -B ${WORK_DIR}/sdk_build -G ${GENERATOR}
    -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${WORK_DIR}/sdk_build)

# 2. The example plugin, against the installed SDK only.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/hello_plugin -B ${WORK_DIR}/hello_build
    -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/hello_build)
if(NOT EXISTS ${WORK_DIR}/hello_build/sable-model-hello.so)
  message(FATAL_ERROR "the example did not produce sable-model-hello.so")
endif()

# 3. `sable plugins` finds it, three ways.
function(expect_listed how)
  if(NOT run_output MATCHES "model +hello +0\\.1\\.0 +1\\.[0-9]+ +HelloForCausalLM +[^\n]*sable-model-hello\\.so")
    message(FATAL_ERROR "`sable plugins` (${how}) does not list the example plugin:\n${run_output}")
  endif()
  message(STATUS "listed via ${how}")
endfunction()

run(${SABLE} plugins --plugin-dirs ${WORK_DIR}/hello_build)
expect_listed("--plugin-dirs")

file(WRITE ${WORK_DIR}/serve.yaml "plugin_dirs:\n  - ${WORK_DIR}/hello_build\n")
run(${SABLE} plugins --config ${WORK_DIR}/serve.yaml)
expect_listed("plugin_dirs in YAML")

run(${CMAKE_COMMAND} -E env SABLE_PLUGIN_PATH=/nonexistent:${WORK_DIR}/hello_build ${SABLE} plugins)
expect_listed("SABLE_PLUGIN_PATH")

file(REMOVE_RECURSE ${WORK_DIR})
