// The Catch2 test runner's main(), compiled once and linked into each test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
