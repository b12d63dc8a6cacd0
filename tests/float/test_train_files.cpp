// File reading and atomic writing with clear errors, mkdir -p, and the checkpoint byte serializer.
#include <catch2/catch.hpp>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../../trainer/error.h"
#include "../../trainer/files.h"
#include "test_util.h"

using namespace train;

TEST_CASE("files: read_file returns the bytes, or says what is wrong", "[train][files]") {
    TempDir tmp;
    std::string path = join_path(tmp.path, "a.txt");
    write_file_atomic(path, std::string("hello\0world\n", 12));
    CHECK(read_file(path) == std::string("hello\0world\n", 12));

    CHECK(error_of([&] { read_file(tmp.path + "/missing.txt"); }) ==
          "cannot read '" + tmp.path + "/missing.txt': No such file or directory");
    CHECK(error_of([&] { read_file(tmp.path); }) == "cannot read '" + tmp.path + "': it is a directory, not a file");

    std::string empty = join_path(tmp.path, "empty.txt");
    write_file_atomic(empty, "");
    CHECK(error_of([&] { read_file(empty); }) == "'" + empty + "' is empty");
    CHECK(read_file(empty, /*allow_empty=*/true).empty());

    if (geteuid() != 0) {  // root reads anything, so this case only means something for other users
        chmod(path.c_str(), 0);
        CHECK(error_of([&] { read_file(path); }) == "cannot read '" + path + "': Permission denied");
    }
}

TEST_CASE("files: an atomic write removes the temporary files that killed writers of the same file left",
          "[train][files]") {
    TempDir tmp;
    pid_t child = fork();  // a pid that is surely gone once reaped
    REQUIRE(child >= 0);
    if (child == 0) _exit(0);
    REQUIRE(waitpid(child, nullptr, 0) == child);
    const std::string dead = std::to_string((long)child);
    const std::vector<std::string> left = {"a.txt.tmp." + dead, "a.txt.tmp.1", "a.txt.tmp.x1", "b.txt.tmp." + dead};
    for (const std::string& name : left) write_text(tmp / name, "left behind");
    write_file_atomic(tmp / "a.txt", "new");
    std::vector<std::string> names = list_dir(tmp.path);
    std::sort(names.begin(), names.end());
    // gone: a.txt's temp of the dead process; kept: a live process's (pid 1), a name that is not
    // ours, another file's
    CHECK(names == std::vector<std::string>{"a.txt", "a.txt.tmp.1", "a.txt.tmp.x1", "b.txt.tmp." + dead});
    CHECK(read_file(tmp / "a.txt") == "new");
}

TEST_CASE("files: read_file refuses what is not a regular file, at once (a device, a FIFO)", "[train][files]") {
    // /dev/zero never ends (reading it grew memory until bad_alloc); opening a FIFO waited for a writer
    TempDir tmp;
    const std::string fifo = tmp / "fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    for (const std::string& path : {std::string("/dev/zero"), fifo}) {
        CHECK(error_of([&] { read_file(path); }) == "cannot read '" + path + "': it is not a regular file");
        uint64_t size = 0;
        CHECK(error_of([&] { open_regular_file(path, size); }) == "cannot read '" + path + "': it is not a regular file");
    }
    const std::string file = tmp / "x";
    write_text(file, "12345");
    uint64_t size = 0;
    int fd = open_regular_file(file, size);
    CHECK(fd >= 0);
    CHECK(size == 5);
    close(fd);
}

TEST_CASE("files: write_file_atomic replaces the content and leaves no temporary file", "[train][files]") {
    TempDir tmp;
    std::string path = join_path(tmp.path, "ckpt.bin");
    write_file_atomic(path, "old");
    write_file_atomic(path, "new content");
    CHECK(read_file(path) == "new content");
    CHECK(list_dir(tmp.path) == std::vector<std::string>{"ckpt.bin"});
}

TEST_CASE("files: AtomicFile writes piece by piece; abandoned, it leaves the old file and no temporary", "[train][files]") {
    TempDir dir;
    const std::string path = dir / "ckpt";
    write_file_atomic(path, "old");
    {
        AtomicFile f(path);
        f.write("new ", 4);
        CHECK(read_file(path) == "old");  // nothing visible before commit
        f.write(std::string("content"));
        f.commit();
    }
    CHECK(read_file(path) == "new content");
    try {
        AtomicFile f(path);
        f.write(std::string("half of a"));
        throw std::runtime_error("the writer failed midway");  // commit never reached
    } catch (const std::runtime_error&) {
    }
    CHECK(read_file(path) == "new content");
    CHECK(list_dir(dir.path) == std::vector<std::string>{"ckpt"});
}

TEST_CASE("files: a write into a missing or non-folder directory fails cleanly", "[train][files]") {
    TempDir tmp;
    std::string missing = tmp.path + "/no/such/dir/x.bin";
    CHECK(error_of([&] { write_file_atomic(missing, "x"); }) == "cannot write '" + missing + "': No such file or directory");

    std::string file = join_path(tmp.path, "plain");
    write_file_atomic(file, "x");
    CHECK(error_of([&] { write_file_atomic(file + "/x.bin", "x"); }) == "cannot write '" + file + "/x.bin': Not a directory");

    std::string dir_target = join_path(tmp.path, "sub");
    make_dirs(join_path(dir_target, "inner"));
    CHECK(error_of([&] { write_file_atomic(dir_target, "x"); }) == "cannot write '" + dir_target + "': Is a directory");
    CHECK(list_dir(tmp.path).size() == 2);  // "plain" and "sub": no temporary file left behind
}

TEST_CASE("files: a write that fails midway keeps the old content and removes the temp file", "[train][files]") {
    TempDir tmp;
    std::string path = join_path(tmp.path, "ckpt.bin");
    write_file_atomic(path, "old content");

    // Simulate a full disk, which works even for root: a file size limit makes write() fail with EFBIG
    // (and raise SIGXFSZ, which we ignore for the duration).
    struct rlimit saved;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    struct rlimit small = saved;
    small.rlim_cur = 1000;
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string message = error_of([&] { write_file_atomic(path, std::string(5000, 'x')); });
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);

    CHECK(message == "cannot write '" + path + "': File too large");
    CHECK(read_file(path) == "old content");
    CHECK(list_dir(tmp.path) == std::vector<std::string>{"ckpt.bin"});
}

TEST_CASE("files: a read-only folder refuses the write and keeps the old content", "[train][files]") {
    if (geteuid() == 0) {
        WARN("skipped: running as root, whom a read-only folder does not stop (the file-size-limit test covers the failure path)");
        return;
    }
    TempDir tmp;
    std::string path = join_path(tmp.path, "ckpt.bin");
    write_file_atomic(path, "old content");
    chmod(tmp.path.c_str(), 0555);
    CHECK(error_of([&] { write_file_atomic(path, "new"); }) == "cannot write '" + path + "': Permission denied");
    chmod(tmp.path.c_str(), 0755);
    CHECK(read_file(path) == "old content");
    CHECK(list_dir(tmp.path) == std::vector<std::string>{"ckpt.bin"});
}

TEST_CASE("files: make_dirs creates missing parents and explains when it cannot", "[train][files]") {
    TempDir tmp;
    std::string deep = tmp.path + "/a/b/c";
    make_dirs(deep);
    make_dirs(deep);  // again: already there is fine
    make_dirs(deep + "/");
    struct stat st;
    REQUIRE(stat(deep.c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));

    std::string file = tmp.path + "/a/file";
    write_file_atomic(file, "x");
    CHECK(error_of([&] { make_dirs(file); }) == "cannot create directory '" + file + "': '" + file + "' exists and is not a directory");
    CHECK(error_of([&] { make_dirs(file + "/sub"); }) ==
          "cannot create directory '" + file + "/sub': '" + file + "' exists and is not a directory");
    CHECK(error_of([&] { make_dirs("/proc/no_such_dir_here"); }).find("cannot create directory '/proc/no_such_dir_here': ") == 0);
    CHECK(join_path("out", "log.csv") == "out/log.csv");
    CHECK(join_path("out/", "log.csv") == "out/log.csv");
    CHECK(join_path("", "log.csv") == "log.csv");
}

TEST_CASE("files: ByteWriter and ByteReader round-trip every type exactly", "[train][files]") {
    ByteWriter w;
    w.u32(0xDEADBEEFu);
    w.u64(0x0123456789ABCDEFull);
    w.i64(-42);
    w.f64(0.1);
    w.str("h.0.attn.c_attn.weight");
    w.str("");
    std::vector<float> f = {1.5f, -0.0f, 3.4e38f, 1e-45f};
    std::vector<double> d = {M_PI, -1e300};
    w.floats(f.data(), f.size());
    w.doubles(d.data(), d.size());
    CHECK(w.bytes().size() == 4 + 8 + 8 + 8 + (8 + 22) + 8 + 4 * 4 + 2 * 8);

    ByteReader r(w.bytes(), "mem");
    CHECK(r.u32("a") == 0xDEADBEEFu);
    CHECK(r.u64("b") == 0x0123456789ABCDEFull);
    CHECK(r.i64("c") == -42);
    CHECK(r.f64("d") == 0.1);
    CHECK(r.str("e") == "h.0.attn.c_attn.weight");
    CHECK(r.str("f").empty());
    std::vector<float> f2(4);
    std::vector<double> d2(2);
    r.floats(f2.data(), f2.size(), "g");
    r.doubles(d2.data(), d2.size(), "h");
    CHECK(std::memcmp(f.data(), f2.data(), sizeof(float) * 4) == 0);  // bit for bit, -0.0 included
    CHECK(d2 == d);
    CHECK(r.remaining() == 0);
    r.expect_end();
}

TEST_CASE("files: ByteReader reports truncation with what it was reading", "[train][files]") {
    ByteWriter w;
    w.u64(7);
    w.str("abc");
    std::string bytes = w.bytes().substr(0, w.bytes().size() - 1);  // lose the last byte

    ByteReader r(bytes, "out/model.bin");
    CHECK(r.u64("step") == 7);
    CHECK(error_of([&] { r.str("parameter name"); }) ==
          "'out/model.bin' is truncated: reading 'parameter name' needs 3 bytes at offset 16, only 2 remain");

    std::string four(4, '\0');
    ByteReader r2(four, "ckpt");
    CHECK(error_of([&] { r2.u64("magic"); }) == "'ckpt' is truncated: reading 'magic' needs 8 bytes at offset 0, only 4 remain");
    std::vector<float> out(2);
    CHECK(error_of([&] { r2.floats(out.data(), 2, "wte"); }) ==
          "'ckpt' is truncated: reading 'wte' needs 2 x 4 bytes at offset 0, only 4 remain");
    // a corrupt, enormous count fails cleanly instead of overflowing n * 4
    CHECK(error_of([&] { r2.floats(out.data(), SIZE_MAX / 2, "wte"); }).find("is truncated") != std::string::npos);
    CHECK(error_of([&] { r2.expect_end(); }) == "'ckpt' has 4 unexpected bytes after its end");

    // a string whose stored length is corrupt: fails before allocating
    ByteWriter huge;
    huge.u64(1ull << 60);
    ByteReader r3(huge.bytes(), "ckpt");
    CHECK(error_of([&] { r3.str("name"); }).find("needs 1152921504606846976 bytes at offset 8, only 0 remain") != std::string::npos);
}
