// The check macro and counters of the C++ test programs (tests/cpp_api.rs reads the summary
// line each prints: "<name>: P passed, F failed").
#ifndef CTC_TEST_CHECK_H
#define CTC_TEST_CHECK_H

#include <cstdio>

static int passed = 0, failed = 0;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (cond) {                                                       \
      ++passed;                                                       \
    } else {                                                          \
      ++failed;                                                       \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                 \
  } while (0)

#endif  // CTC_TEST_CHECK_H
