# make          build everything: the library and ./train (from trainer/main.cpp)
# make test     build and run every test (needs Catch2 v2: apt-get install catch2)
# make clean    remove build/, build-san/, build-fuzz/, build-x86-64-v2/, build-x86-64-v3/ and ./train
# make fuzz     build the fuzz targets (fuzz/*.cpp: one per reader of untrusted bytes) with clang's
#               libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/, and run
#               each for FUZZ_SECONDS (default 60) from its seeds (fuzz/seeds/<target>/ plus files a short
#               ./train run makes), one after another. A crash, sanitizer report, uncaught exception
#               other than the one-line error, hang (-timeout) or allocation out of proportion
#               (-rss_limit_mb, -malloc_limit_mb) is a finding: the input lands in build-fuzz/findings/.
#               Needs clang++ and libclang-rt-14-dev. FUZZ_TARGETS=name... runs only those.
#
# PORTABLE=x86-64-v2 or PORTABLE=x86-64-v3
#                with any of the above: build into build-x86-64-v2/ (or -v3/) with that -march in place
#                of -march=native, so the kernels take the paths a CPU without AVX-512 runs: v2 (SSE4.2,
#                no AVX) the scalar loops, v3 the AVX2 and FMA ones. `make test` builds the library and
#                the float tests both ways too and runs them after the native suite (the double build
#                compiles the scalar loops but has no float tests). On 2 cores each extra build takes
#                about 1.5 minutes and its run about 1, so the two add some 5 minutes to `make test`.
#
# SANITIZE=1     with any of the above: build everything (library, train, tests) with AddressSanitizer
#                and UndefinedBehaviorSanitizer into build-san/ (the trainer is build-san/train, which
#                the tests of that build run), so `make test SANITIZE=1` runs the whole suite under
#                both; any report fails the test that caused it.
#
# The engine is compiled twice: in float (what training uses) and in double (-DAUTOGRAD_DOUBLE), for
# the gradient checks, whose finite differences need double precision to be tight.

CXX      ?= g++
CXXFLAGS ?= -std=c++17 -O3 -march=native -fopenmp -Wall -Wextra
LDFLAGS  ?= -fopenmp

ifeq ($(SANITIZE),1)
# -fno-sanitize-recover: an undefined-behaviour report ends the program, so the test that caused it
# fails (by default UBSan prints and carries on). -g and frame pointers: readable stack traces.
# -ffp-contract=off: the instrumentation changes which multiply-adds GCC fuses into one rounding, and
# differently in a kernel's vector loop and its scalar tail, which tests compare bit for bit.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -ffp-contract=off
override CXXFLAGS += $(SAN_FLAGS)
override LDFLAGS  += $(SAN_FLAGS)
BUILD    := build-san
TRAIN    := $(BUILD)/train
else ifneq ($(PORTABLE),)
ifeq ($(filter x86-64-v2 x86-64-v3,$(PORTABLE)),)
$(error PORTABLE=$(PORTABLE): expected x86-64-v2 or x86-64-v3)
endif
# The same flags with this -march in place of any other: no AVX-512 kernel is compiled (nor, with v2,
# any AVX one).
override CXXFLAGS := $(filter-out -march=%,$(CXXFLAGS)) -march=$(PORTABLE)
BUILD    := build-$(PORTABLE)
TRAIN    := $(BUILD)/train
# GCC 12 warns that std::regex's own code (inside Catch2's main) may use an uninitialised
# std::function under the sanitizers: a false positive in the library header, not in our code.
$(BUILD)/catch_main.o: override CXXFLAGS += -Wno-maybe-uninitialized
else
BUILD    := build
TRAIN    := train
endif

ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

# Everything but trainer/main.cpp goes into one library, so that tests can link any layer.
# (The trainer's sources live in trainer/, since the binary itself is ./train.)
LIB_SRC  := $(wildcard autograd/*.cpp autograd/fast/*.cpp nn/*.cpp optim/*.cpp) $(filter-out trainer/main.cpp,$(wildcard trainer/*.cpp))
LIB_F32  := $(BUILD)/f32/libgpt.a
LIB_F64  := $(BUILD)/f64/libgpt.a

TEST_F64_SRC := $(wildcard tests/double/*.cpp)
TEST_F32_SRC := $(wildcard tests/float/*.cpp)
TEST_F64 := $(BUILD)/tests_double
TEST_F32 := $(BUILD)/tests_float

.PHONY: all test clean check-catch2

all: $(LIB_F32) $(TRAIN)

# ---- objects: build/f32/... in float, build/f64/... in double
$(BUILD)/f32/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/f64/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -DAUTOGRAD_DOUBLE -MMD -MP -c $< -o $@

$(LIB_F32): $(LIB_SRC:%.cpp=$(BUILD)/f32/%.o)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIB_F64): $(LIB_SRC:%.cpp=$(BUILD)/f64/%.o)
	@rm -f $@
	$(AR) rcs $@ $^

$(TRAIN): $(BUILD)/f32/trainer/main.o $(LIB_F32)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS)

# ---- tests (they run the trainer binary of their own build: ./train, or build-san/train)
$(BUILD)/f32/tests/%.o: override CXXFLAGS += -DTRAIN_BINARY='"./$(TRAIN)"'

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

# The native suite, then (unless this is already a PORTABLE or SANITIZE build) the float tests of the
# two portable builds, all counted in one summary line.
# Only on x86-64, and v3 only on a CPU that runs it (AVX2 and FMA).
ifeq ($(PORTABLE)$(SANITIZE)$(filter-out x86_64,$(shell uname -m)),)
PORTABLE_LEVELS := $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && echo x86-64-v3) x86-64-v2
endif

test: check-catch2
	@$(MAKE) --no-print-directory $(TRAIN) $(TEST_F64) $(TEST_F32)
	@$(foreach p,$(PORTABLE_LEVELS),$(MAKE) --no-print-directory PORTABLE=$(p) build-$(p)/train build-$(p)/tests_float &&) true
	@tests/run.sh $(TEST_F64) $(TEST_F32) $(foreach p,$(PORTABLE_LEVELS),build-$(p)/tests_float)

# ---- make bench: build and run bench/bench.cpp (kernels against this machine's measured limits)
.PHONY: bench
$(BUILD)/bench: $(BUILD)/f32/bench/bench.o $(LIB_F32)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS)

bench: $(BUILD)/bench
	$(BUILD)/bench

clean:
	rm -rf build build-san build-fuzz build-x86-64-v2 build-x86-64-v3 train

# ---- make fuzz (see the header). The library is compiled for the fuzzers with coverage
# instrumentation (-fsanitize=fuzzer-no-link); each target links libFuzzer's main.
FUZZ_CXX      ?= clang++
FUZZ_SECONDS  ?= 60
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g
# -Wno-pass-failed: at -O1 clang does not vectorize the loops marked "omp simd" and says so for each.
FUZZ_CXXFLAGS := -std=c++17 -O1 -fopenmp -Wall -Wextra -Wno-pass-failed $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_ALL      := $(patsubst fuzz/%.cpp,%,$(wildcard fuzz/fuzz_*.cpp))
FUZZ_TARGETS  ?= $(FUZZ_ALL)
FUZZ_LIB      := build-fuzz/libgpt.a

.PHONY: fuzz check-fuzzer fuzz-build
check-fuzzer:
	@echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' | \
	  $(FUZZ_CXX) -fsanitize=fuzzer -x c++ - -o /dev/null >/dev/null 2>&1 || \
	  { echo "error: make fuzz needs clang++ with libFuzzer ($(FUZZ_CXX) -fsanitize=fuzzer does not link); install them with: sudo apt-get install clang libclang-rt-14-dev"; exit 1; }

build-fuzz/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(LIB_SRC:%.cpp=build-fuzz/obj/%.o)
	@rm -f $@
	$(AR) rcs $@ $^

build-fuzz/fuzz_%: build-fuzz/obj/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer $^ -o $@ -fopenmp

fuzz-build: check-fuzzer
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=build-fuzz/%) $(TRAIN)

fuzz: fuzz-build
	@fuzz/run.sh $(FUZZ_SECONDS) ./$(TRAIN) $(FUZZ_TARGETS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
-include $(shell find build-fuzz -name '*.d' 2>/dev/null)
