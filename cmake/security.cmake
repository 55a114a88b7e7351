# The suite-wide secrets check: every end-to-end run keeps shelfd's logs and
# the editor's messages in test-logs/ (tests/nvim/run.sh, $SHELF_LOG_KEEP);
# security/secrets runs after all other tests and fails if a password, a
# JWT-shaped token or a session's refresh token is in them. Include last.
set(SHELF_LOG_KEEP ${CMAKE_BINARY_DIR}/test-logs)
add_test(NAME security/logs-reset COMMAND ${CMAKE_COMMAND} -E rm -rf ${SHELF_LOG_KEEP})
set_tests_properties(security/logs-reset PROPERTIES FIXTURES_SETUP shelf_logs)
get_property(shelf_all_tests DIRECTORY PROPERTY TESTS)
set(shelf_log_tests "")
foreach(t ${shelf_all_tests})
  if(t MATCHES "^(nvim-[0-9.]+|valgrind)/")
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "SHELF_LOG_KEEP=${SHELF_LOG_KEEP}")
    set_property(TEST ${t} APPEND PROPERTY FIXTURES_REQUIRED shelf_logs)
    list(APPEND shelf_log_tests ${t})
  endif()
endforeach()
add_test(NAME security/secrets-selftest COMMAND ${PROJECT_SOURCE_DIR}/tests/security/secrets-selftest.sh)
add_test(NAME security/static COMMAND ${PROJECT_SOURCE_DIR}/tests/security/static.sh ${PROJECT_SOURCE_DIR})
add_test(NAME security/secrets
  COMMAND ${PROJECT_SOURCE_DIR}/tests/security/secrets.sh ${SHELF_LOG_KEEP}
          ${CMAKE_BINARY_DIR}/Testing/Temporary/LastTest.log)
# Not FIXTURES_REQUIRED: run alone, it checks what the last run kept.
set_tests_properties(security/secrets PROPERTIES DEPENDS "${shelf_all_tests}")
add_test(NAME security/static-selftest COMMAND ${PROJECT_SOURCE_DIR}/tests/security/static.sh --selftest)
