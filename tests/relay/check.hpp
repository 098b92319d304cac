// The relay unit tests' assertion: prints the failed condition with its line and counts it; main returns
// the count.
#pragma once

#include <cstdio>

inline int g_failures = 0;

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                           \
    }                                                                         \
  } while (0)
