// Placeholder replaced by the error table test.
#include <doctest/doctest.h>
