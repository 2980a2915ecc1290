# Helpers so every component declares its targets the same way (one target
# per directory, warnings applied to our code only).

add_library(baton_warnings INTERFACE)
target_compile_options(baton_warnings INTERFACE -Wall -Wextra -Werror)
# Asio/Process v2 settings shared by every target that includes Boost.
add_library(baton_boost INTERFACE)
target_compile_definitions(baton_boost INTERFACE
  BOOST_PROCESS_USE_STD_FS
  BOOST_ASIO_NO_DEPRECATED
  BOOST_ASIO_DISABLE_BOOST_COROUTINE)
target_link_libraries(baton_boost INTERFACE Boost::headers Threads::Threads)

# Only include/ (the public API) is a PUBLIC include directory. Our own code
# reaches the private headers ("base/log.h", "protocol/channel.h") through
# the source root, which each internal target adds PRIVATE; a target built
# with PUBLIC_API_ONLY (kvd, the example daemons) sees include/ alone, as an
# out-of-tree daemon does.

# baton_library(NAME [PUBLIC_API_ONLY] SRCS a.cc b.cc DEPS x y)
function(baton_library name)
  cmake_parse_arguments(ARG "PUBLIC_API_ONLY" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  if(NOT ARG_PUBLIC_API_ONLY)
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  endif()
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE baton_warnings)
endfunction()

# baton_executable(NAME [PUBLIC_API_ONLY] SRCS ... DEPS ...)
function(baton_executable name)
  cmake_parse_arguments(ARG "PUBLIC_API_ONLY" "OUTPUT_NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  if(NOT ARG_PUBLIC_API_ONLY)
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  endif()
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} baton_warnings)
  if(ARG_OUTPUT_NAME)
    set_target_properties(${name} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
endfunction()

# baton_test(NAME SRCS ... DEPS ...): one gtest binary, every case visible to ctest.
function(baton_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main baton_warnings)
  target_compile_definitions(${name} PRIVATE BATON_BIN_DIR="${CMAKE_RUNTIME_OUTPUT_DIRECTORY}"
                                             BATON_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/tests")
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  # ThreadSanitizer runs every process several times slower (the harness's
  # budgets scale the same way: tools/harness/slowdown.h).
  if(BATON_SANITIZE MATCHES "thread")
    math(EXPR ARG_TIMEOUT "${ARG_TIMEOUT} * 2")
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT ${ARG_TIMEOUT})
  # Labels are set after discovery, from the list of the tests it found:
  # PROPERTIES is flattened into one list on its way to set_tests_properties,
  # where a second label would be read as a property name and dropped.
  if(ARG_LABELS)
    set(labels_file "${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake")
    file(WRITE "${labels_file}"
      "if(${name}_TESTS)\n  set_tests_properties(\${${name}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\")\nendif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${labels_file}")
  endif()
endfunction()
