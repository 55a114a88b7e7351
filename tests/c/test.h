/* test.h - a tiny test runner in the spirit of libuv's TEST_IMPL and redis's
 * test_cond: each test file lists its cases in `test_cases[]` and ends with
 * TEST_MAIN(). Run with no argument to run every case, or with a case name to
 * run one. A failed ASSERT prints where and why and stops that case. */
#ifndef SHELF_TEST_H
#define SHELF_TEST_H

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  void (*fn)(void);
} test_case;

extern jmp_buf test_jmp;
extern int test_failed;

#define TEST(name) static void test_##name(void)
#define TEST_ENTRY(name) {#name, test_##name}

#define ASSERT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "  %s:%d: assertion failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                        \
      longjmp(test_jmp, 1);                                                  \
    }                                                                        \
  } while (0)

#define ASSERT_EQ(a, b)                                                       \
  do {                                                                        \
    long long a_ = (long long)(a), b_ = (long long)(b);                       \
    if (a_ != b_) {                                                           \
      fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,   \
              __LINE__, #a, #b, a_, b_);                                      \
      longjmp(test_jmp, 1);                                                   \
    }                                                                         \
  } while (0)

#define ASSERT_STR(a, b)                                                      \
  do {                                                                        \
    const char *a_ = (a), *b_ = (b);                                          \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                  \
      fprintf(stderr, "  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n",         \
              __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)",                 \
              b_ ? b_ : "(null)");                                            \
      longjmp(test_jmp, 1);                                                   \
    }                                                                         \
  } while (0)

int test_run(const test_case *cases, size_t n, int argc, char **argv);

#define TEST_MAIN()                                                          \
  jmp_buf test_jmp;                                                          \
  int test_failed;                                                           \
  int test_run(const test_case *cases, size_t n, int argc, char **argv) {    \
    int passed = 0, failed = 0, ran = 0;                                     \
    for (size_t i = 0; i < n; i++) {                                         \
      if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)                   \
        continue;                                                            \
      ran++;                                                                 \
      if (setjmp(test_jmp) == 0) {                                           \
        cases[i].fn();                                                       \
        fprintf(stderr, "ok %s\n", cases[i].name);                           \
        passed++;                                                            \
      } else {                                                               \
        fprintf(stderr, "FAIL %s\n", cases[i].name);                         \
        failed++;                                                            \
      }                                                                      \
    }                                                                        \
    if (ran == 0) {                                                          \
      fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "");        \
      return 2;                                                              \
    }                                                                        \
    fprintf(stderr, "%d passed, %d failed\n", passed, failed);               \
    return failed ? 1 : 0;                                                   \
  }                                                                          \
  int main(int argc, char **argv) {                                          \
    return test_run(test_cases, sizeof test_cases / sizeof test_cases[0],    \
                    argc, argv);                                             \
  }

#endif
