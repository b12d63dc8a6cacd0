// test_util.h: small helpers shared by the trainer's tests.
#pragma once

#include <catch2/catch.hpp>
#include <dirent.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <functional>
#include <string>
#include <vector>

#include "../../trainer/error.h"

// A fresh empty folder under /tmp, removed with everything in it at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char name[] = "/tmp/test_train.XXXXXX";
        REQUIRE(mkdtemp(name) != nullptr);
        path = name;
    }
    ~TempDir() {
        std::string cmd = "chmod -R u+w '" + path + "' && rm -rf '" + path + "'";
        if (std::system(cmd.c_str()) != 0) std::perror("cleanup");
    }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// The names in a folder (none if it does not exist).
inline std::vector<std::string> list_dir(const std::string& path) {
    std::vector<std::string> names;
    DIR* dir = opendir(path.c_str());
    if (!dir) return names;
    while (dirent* e = readdir(dir)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    closedir(dir);
    return names;
}

inline void write_text(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
}

// The message of the train::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const train::Error& e) {
        return e.what();
    }
    return "(no error)";
}

// ---- running ./train (the command-line tests)

// The trainer of this build: ./train, or build-san/train in the sanitizer build (the Makefile says).
#ifndef TRAIN_BINARY
#define TRAIN_BINARY "./train"
#endif

struct Result {
    int status;          // the exit code
    std::string output;  // stdout and stderr together
};

// Runs a shell command line, returning its exit code and output (stdout and stderr together).
inline Result run_command(const std::string& command) {
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    int status = pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

// Runs ./train with the arguments (a shell string), returning its exit code and output.
inline Result run_train(const std::string& args) {
    REQUIRE(access(TRAIN_BINARY, X_OK) == 0);  // make test builds it; run from the repository root
    return run_command(std::string(TRAIN_BINARY) + " " + args);
}

// The same, confined to 1 GB of memory and a minute (one thread), for the hostile files: a reader
// that allocated what a file claims, or waited on a FIFO, then fails the test instead of passing late.
// AddressSanitizer reserves terabytes of address space for its shadow memory, which ulimit -v would
// refuse: in that build the sanitizer's allocator caps each allocation instead.
#if defined(__SANITIZE_ADDRESS__)  // GCC's name for -fsanitize=address
#define UNDER_ADDRESS_SANITIZER 1
#elif defined(__has_feature)       // clang's
#if __has_feature(address_sanitizer)
#define UNDER_ADDRESS_SANITIZER 1
#endif
#endif
inline Result run_train_confined(const std::string& args) {
    REQUIRE(access(TRAIN_BINARY, X_OK) == 0);
#if defined(UNDER_ADDRESS_SANITIZER)
    const std::string limit =
        "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=1024:allocator_may_return_null=1\" ";
#else
    const std::string limit = "ulimit -v 1048576 && ";
#endif
    return run_command(limit + "OMP_NUM_THREADS=1 timeout 60 " + TRAIN_BINARY + " " + args);
}

// Some text with enough structure to learn from quickly.
inline std::string little_text() {
    std::string s;
    for (int i = 0; i < 300; ++i) s += (i % 3 ? "the cat sat on the mat. " : "a dog ran to the sun. ");
    return s;
}

// A tiny model and run: every test below adds its own flags.
const std::string kTiny =
    " --n-layer 1 --n-head 2 --n-embd 16 --seq-len 16 --batch-size 4 --eval-every 0 --sample-every 0 --sample-len 8";

// The train_loss column of a log.csv, as text (so that comparisons are exact).
inline std::vector<std::string> train_losses(const std::string& csv_path) {
    std::ifstream f(csv_path);
    std::vector<std::string> losses;
    std::string line;
    std::getline(f, line);
    while (std::getline(f, line)) {
        std::stringstream fields(line);
        std::string step, loss;
        std::getline(fields, step, ',');
        std::getline(fields, loss, ',');
        losses.push_back(loss);
    }
    return losses;
}

// The one line a failing run prints.
inline void expect_error(const Result& r, const std::string& message) {
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Catch::Matchers::StartsWith("error: ") && Catch::Matchers::Contains(message));
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}
