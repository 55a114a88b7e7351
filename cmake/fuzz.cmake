# libFuzzer targets (fuzz/README). This file has two roles:
# - SHELF_FUZZ=ON, in a build directory of its own configured with clang:
#   builds fuzz_rpc, fuzz_realtime and fuzz_records (target `fuzz`).
# - SHELF_FUZZ_BIN=<that directory>, in the test build: registers a bounded
#   run of each (fuzz/run.sh on a copy of its seed corpus) as a ctest.
option(SHELF_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
set(SHELF_FUZZ_TARGETS rpc realtime records)
set(SHELF_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz target runs in the tests")

if(SHELF_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SHELF_FUZZ needs clang: configure with -DCMAKE_C_COMPILER=clang")
  endif()
  set(SHELF_FUZZ_FLAGS -g -O1 -fno-omit-frame-pointer
      -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
  # Every module but main.c, instrumented. A target #includes the .c files
  # whose static functions it calls (fuzz/fuzz_*.c); the linker then takes
  # nothing from this archive for them, since the target defines it all.
  add_library(shelffuzzcore STATIC ${SHELF_CORE_SOURCES})
  target_include_directories(shelffuzzcore PUBLIC csrc)
  target_compile_options(shelffuzzcore PRIVATE ${SHELF_FUZZ_FLAGS})
  target_compile_definitions(shelffuzzcore PRIVATE SHELF_VERSION="fuzz")
  target_link_libraries(shelffuzzcore PUBLIC ${SHELF_CORE_LIBS})
  add_custom_target(fuzz)
  foreach(t ${SHELF_FUZZ_TARGETS})
    add_executable(fuzz_${t} fuzz/fuzz_${t}.c)
    target_compile_options(fuzz_${t} PRIVATE ${SHELF_FUZZ_FLAGS})
    target_compile_definitions(fuzz_${t} PRIVATE SHELF_VERSION="fuzz")
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${t} PRIVATE shelffuzzcore)
    add_dependencies(fuzz fuzz_${t})
  endforeach()
endif()

if(SHELF_TESTS AND SHELF_FUZZ_BIN)
  foreach(t ${SHELF_FUZZ_TARGETS})
    add_test(NAME fuzz/${t}
      COMMAND ${PROJECT_SOURCE_DIR}/fuzz/run.sh ${t} ${SHELF_FUZZ_SECONDS})
    math(EXPR limit "${SHELF_FUZZ_SECONDS} * 2 + 180")
    set_tests_properties(fuzz/${t} PROPERTIES TIMEOUT ${limit}
      ENVIRONMENT "SHELF_FUZZ_BIN=${SHELF_FUZZ_BIN}")
  endforeach()
endif()
