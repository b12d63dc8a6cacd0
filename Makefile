# make          build everything that exists (the autograd library; the train binary comes later)
# make test     build and run every test (needs Catch2 v2: apt-get install catch2)
# make clean    remove build/
#
# The engine is compiled twice: in float (what training uses) and in double (-DAUTOGRAD_DOUBLE), for
# the gradient checks, whose finite differences need double precision to be tight.

CXX      ?= g++
CXXFLAGS ?= -std=c++17 -O3 -march=native -fopenmp -Wall -Wextra
LDFLAGS  ?= -fopenmp
BUILD    := build

ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

AUTOGRAD_SRC := $(wildcard autograd/*.cpp)
LIB_F32 := $(BUILD)/f32/libautograd.a
LIB_F64 := $(BUILD)/f64/libautograd.a

TEST_F64_SRC := $(wildcard tests/double/*.cpp)
TEST_F32_SRC := $(wildcard tests/float/*.cpp)
TEST_F64 := $(BUILD)/tests_double
TEST_F32 := $(BUILD)/tests_float

.PHONY: all test clean check-catch2

all: $(LIB_F32)

# ---- objects: build/f32/... in float, build/f64/... in double
$(BUILD)/f32/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/f64/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -DAUTOGRAD_DOUBLE -MMD -MP -c $< -o $@

$(LIB_F32): $(AUTOGRAD_SRC:%.cpp=$(BUILD)/f32/%.o)
	$(AR) rcs $@ $^

$(LIB_F64): $(AUTOGRAD_SRC:%.cpp=$(BUILD)/f64/%.o)
	$(AR) rcs $@ $^

# ---- tests
check-catch2:
	@echo '#include <catch2/catch.hpp>' | $(CXX) -std=c++17 -x c++ -E - >/dev/null 2>&1 || \
	  { echo "error: Catch2 v2 is not installed (catch2/catch.hpp not found); install it with: sudo apt-get install catch2"; exit 1; }

$(BUILD)/catch_main.o: tests/main.cpp | check-catch2
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(TEST_F64): $(TEST_F64_SRC:%.cpp=$(BUILD)/f64/%.o) $(BUILD)/catch_main.o $(LIB_F64)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS)

$(TEST_F32): $(TEST_F32_SRC:%.cpp=$(BUILD)/f32/%.o) $(BUILD)/catch_main.o $(LIB_F32)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS)

test: check-catch2
	@$(MAKE) --no-print-directory $(TEST_F64) $(TEST_F32)
	@tests/run.sh $(TEST_F64) $(TEST_F32)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
