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

struct Result {
    int status;          // the exit code
    std::string output;  // stdout and stderr together
};

// Runs ./train with the arguments (a shell string), returning its exit code and output.
inline Result run_train(const std::string& args) {
    REQUIRE(access("./train", X_OK) == 0);  // make test builds it; run from the repository root
    std::string cmd = "./train " + args + " 2>&1";
    FILE* pipe = popen(cmd.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    int status = pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
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
