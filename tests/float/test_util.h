// test_util.h: small helpers shared by the trainer's tests.
#pragma once

#include <catch2/catch.hpp>
#include <dirent.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>
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
