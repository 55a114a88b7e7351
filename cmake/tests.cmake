# Test registration: C unit tests (tests/c/test_*.c, one executable each) and
# end-to-end tests in real headless Neovim (tests/nvim/test_*.lua, one each).
file(GLOB SHELF_TEST_SUPPORT CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/c/support/*.c)
add_library(shelftestsupport STATIC ${SHELF_TEST_SUPPORT})
target_link_libraries(shelftestsupport PUBLIC shelfcore)
target_include_directories(shelftestsupport PUBLIC ${PROJECT_SOURCE_DIR}/tests/c/support)
target_compile_definitions(shelftestsupport PRIVATE SHELF_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

file(GLOB SHELF_C_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/c/test_*.c)
# The Realtime client's cases each run in a process of their own, as shelfd
# does: each ends by destroying the process's libwebsockets context
# (rt_shutdown), which lws 4.1.6 only does safely at exit (lws_compat.c).
list(FILTER SHELF_C_TESTS EXCLUDE REGEX "test_realtime\\.c$")
add_executable(test_realtime ${PROJECT_SOURCE_DIR}/tests/c/test_realtime.c)
target_link_libraries(test_realtime PRIVATE shelftestsupport)
target_include_directories(test_realtime PRIVATE ${PROJECT_SOURCE_DIR}/tests/c)
file(STRINGS ${PROJECT_SOURCE_DIR}/tests/c/test_realtime.c SHELF_RT_ENTRIES REGEX "TEST_ENTRY\\(")
foreach(line ${SHELF_RT_ENTRIES})
  string(REGEX REPLACE ".*TEST_ENTRY\\(([a-z0-9_]+)\\).*" "\\1" case "${line}")
  add_test(NAME c/test_realtime/${case} COMMAND test_realtime ${case})
  set_tests_properties(c/test_realtime/${case} PROPERTIES TIMEOUT 120)
endforeach()
foreach(src ${SHELF_C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE shelftestsupport)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/c)
  add_test(NAME c/${name} COMMAND ${name})
  set_tests_properties(c/${name} PROPERTIES TIMEOUT 120
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1")
endforeach()
# Its 50 kB query (past LIKE's limit) makes SQLite grow a 50,000-term FTS5
# phrase a few terms at a time: under ASan every realloc copies, about 55 s
# on a 2-core machine at rest, twice that beside other tests.
set_tests_properties(c/test_search PROPERTIES TIMEOUT 300)

# shelfd's descriptors at start-up and exit (strace sees every close()).
add_test(NAME lifecycle/fds COMMAND ${PROJECT_SOURCE_DIR}/tests/lifecycle/fds.sh $<TARGET_FILE:shelfd>)
set_tests_properties(lifecycle/fds PROPERTIES TIMEOUT 60)

# The Neovims the end-to-end tests run on, each test once per Neovim as
# nvim-<major.minor>/<test>: SHELF_NVIM alone when set (`make test NVIM=...`),
# else the nvim on PATH (Debian's) plus each relocatable build
# nvim-*-linux-x86_64.tar.xz in SHELF_SHARED/nvim, unpacked here.
set(SHELF_NVIM "" CACHE STRING "Run the Neovim end-to-end tests on this Neovim only")
set(SHELF_SHARED "${PROJECT_SOURCE_DIR}/../shared" CACHE PATH
    "Test-only files beside the project: Neovim builds (nvim/) and picker plugins (pickers/)")
include(${PROJECT_SOURCE_DIR}/cmake/nvims.cmake)
shelf_find_nvims(SHELF_NVIMS SHELF_NVIM_LABELS)
list(GET SHELF_NVIMS 0 NVIM)
message(NOTICE "shelf: the Neovim end-to-end tests run on ${SHELF_NVIM_LABELS}")

file(GLOB SHELF_NVIM_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/nvim/test_*.lua)
foreach(exe label IN ZIP_LISTS SHELF_NVIMS SHELF_NVIM_LABELS)
  foreach(src ${SHELF_NVIM_TESTS})
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME ${label}/${name}
      COMMAND ${PROJECT_SOURCE_DIR}/tests/nvim/run.sh ${src})
    # Exit code 77: some of the file's tests could not run here (they say why).
    set_tests_properties(${label}/${name} PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
      ENVIRONMENT "SHELF_TEST_HELPER=$<TARGET_FILE:shelfd>;SHELF_ROOT=${PROJECT_SOURCE_DIR};SHELF_NVIM=${exe};SHELF_SHARED=${SHELF_SHARED}")
  endforeach()
endforeach()

# The end-to-end API test once more with every shelfd under valgrind. It needs
# a shelfd built without sanitizers (they do not mix with valgrind): the
# Makefile passes the release build's.
if(SHELF_PLAIN_HELPER)
  find_program(VALGRIND valgrind REQUIRED)
  add_test(NAME valgrind/test_api
    COMMAND ${PROJECT_SOURCE_DIR}/tests/valgrind/run.sh ${SHELF_PLAIN_HELPER}
            ${PROJECT_SOURCE_DIR}/tests/nvim/test_api.lua)
  set_tests_properties(valgrind/test_api PROPERTIES TIMEOUT 600
    ENVIRONMENT "SHELF_ROOT=${PROJECT_SOURCE_DIR};SHELF_NVIM=${NVIM}")
  # The Realtime stress test under valgrind too, on the core built again
  # without the sanitizers (from the one source list, CMakeLists.txt).
  add_library(shelfcore_plain STATIC ${SHELF_CORE_SOURCES})
  target_include_directories(shelfcore_plain PUBLIC ${PROJECT_SOURCE_DIR}/csrc)
  target_compile_definitions(shelfcore_plain PRIVATE SHELF_VERSION="${SHELF_VERSION}")
  target_link_libraries(shelfcore_plain PUBLIC ${SHELF_CORE_LIBS})
  add_executable(test_realtime_stress_plain
    ${PROJECT_SOURCE_DIR}/tests/c/test_realtime_stress.c
    ${PROJECT_SOURCE_DIR}/tests/c/support/fake_phoenix.c)
  set_target_properties(shelfcore_plain test_realtime_stress_plain PROPERTIES
    COMPILE_OPTIONS "-g;-Wall;-Wextra" LINK_OPTIONS "")
  target_include_directories(test_realtime_stress_plain PRIVATE
    ${PROJECT_SOURCE_DIR}/tests/c ${PROJECT_SOURCE_DIR}/tests/c/support)
  target_link_libraries(test_realtime_stress_plain PRIVATE shelfcore_plain)
  add_test(NAME valgrind/test_realtime_stress
    COMMAND ${VALGRIND} --quiet --leak-check=full --show-leak-kinds=definite,indirect
            --errors-for-leak-kinds=definite,indirect --error-exitcode=99
            $<TARGET_FILE:test_realtime_stress_plain>)
  set_tests_properties(valgrind/test_realtime_stress PROPERTIES TIMEOUT 300)
  add_test(NAME valgrind/supabase_e2e
    COMMAND ${PROJECT_SOURCE_DIR}/tests/valgrind/run.sh ${SHELF_PLAIN_HELPER}
            ${PROJECT_SOURCE_DIR}/tests/nvim/supabase_e2e.lua
            ${PROJECT_SOURCE_DIR}/tests/nvim/run_stack.sh)
  set_tests_properties(valgrind/supabase_e2e PROPERTIES TIMEOUT 900
    ENVIRONMENT "SHELF_ROOT=${PROJECT_SOURCE_DIR};SHELF_NVIM=${NVIM}")
endif()

# The help file builds (helptags fails on duplicate or broken tags) and
# `make` makes doc/tags, so `:help shelf` works without `:helptags`.
add_test(NAME doc/helptags COMMAND ${PROJECT_SOURCE_DIR}/tests/doc/helptags.sh
  ${PROJECT_SOURCE_DIR} ${NVIM})

# The Supabase-compatible stack checks itself with the official supabase-js
# client (it installs PostgreSQL and its npm packages if missing).
add_test(NAME stack/selftest COMMAND ${PROJECT_SOURCE_DIR}/tests/stack/selftest.sh)
set_tests_properties(stack/selftest PROPERTIES TIMEOUT 300)

# shelfd with the Supabase backend against a fresh local stack each:
# supabase_e2e.lua and every tests/nvim/stack_*.lua, on each Neovim.
file(GLOB SHELF_STACK_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/nvim/stack_*.lua)
foreach(exe label IN ZIP_LISTS SHELF_NVIMS SHELF_NVIM_LABELS)
  foreach(src ${PROJECT_SOURCE_DIR}/tests/nvim/supabase_e2e.lua ${SHELF_STACK_TESTS})
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME ${label}/${name} COMMAND ${PROJECT_SOURCE_DIR}/tests/nvim/run_stack.sh ${src})
    # The longest tests (up to two minutes each): started first, so that
    # ctest -j2 does not end on them one after another.
    set_tests_properties(${label}/${name} PROPERTIES TIMEOUT 300 COST 100
      ENVIRONMENT "SHELF_TEST_HELPER=$<TARGET_FILE:shelfd>;SHELF_ROOT=${PROJECT_SOURCE_DIR};SHELF_NVIM=${exe}")
  endforeach()
endforeach()
include(${PROJECT_SOURCE_DIR}/cmake/security.cmake)
