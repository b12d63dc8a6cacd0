// files.cpp: POSIX file I/O with one-line errors, atomic writes, mkdir -p, and the byte serializer.

#include "files.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "error.h"

namespace train {

namespace {

std::string quoted(const std::string& path) { return "'" + path + "'"; }

// "cannot read 'x': No such file or directory", from the errno left by the failing call.
[[noreturn]] void fail_errno(const std::string& verb, const std::string& path) {
    throw Error("cannot " + verb + " " + quoted(path) + ": " + std::strerror(errno));
}

// The folder that holds path: "out/model.bin" -> "out", "model.bin" -> ".", "/x" -> "/".
std::string parent_dir(const std::string& path) {
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

// write(2) may write less than asked, and may be interrupted by a signal: loop until all is written.
bool write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t written = ::write(fd, p, n);
        if (written < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += written;
        n -= (size_t)written;
    }
    return true;
}

// Best effort: makes the rename itself durable. A failure here does not undo the write, so it is ignored.
void fsync_dir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
}

bool is_directory(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

int open_regular_file(const std::string& path, uint64_t& size) {
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer, forever if none comes. (It changes
    // nothing for a regular file.)
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) fail_errno("read", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        int saved = errno;
        ::close(fd);
        errno = saved;
        fail_errno("read", path);
    }
    // open() succeeds on a directory; say so plainly instead of failing later in read() with EISDIR.
    // Devices, FIFOs and sockets have no size to check a file against (/dev/zero never ends): refused.
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error("cannot read " + quoted(path) + (S_ISDIR(st.st_mode) ? ": it is a directory, not a file"
                                                                           : ": it is not a regular file"));
    }
    size = (uint64_t)st.st_size;
    return fd;
}

std::string read_file(const std::string& path, bool allow_empty) {
    uint64_t size = 0;
    int fd = open_regular_file(path, size);

    // Reads no more than the size the file had when opened: memory stays in proportion to it.
    std::string bytes((size_t)size, '\0');
    size_t got = 0;
    while (got < bytes.size()) {
        ssize_t n = ::read(fd, &bytes[got], bytes.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int saved = errno;
            ::close(fd);
            errno = saved;
            fail_errno("read", path);
        }
        if (n == 0) break;  // it became shorter meanwhile: what is there
        got += (size_t)n;
    }
    ::close(fd);
    bytes.resize(got);

    if (bytes.empty() && !allow_empty) throw Error(quoted(path) + " is empty");
    return bytes;
}

namespace {

// A writer killed mid-write (SIGKILL, a power cut) leaves its "<name>.tmp.<pid>" behind. Before writing
// <name> again, remove the ones whose process is gone (kill(pid, 0) says no such process). A pid that
// was reused by a live process keeps its file: harmless, and gone at a later write. (A writer on
// another machine sharing the folder would look gone too: one target written from two machines at
// once is not supported.)
void remove_stale_temps(const std::string& path) {
    const std::string dir = parent_dir(path);
    const size_t slash = path.find_last_of('/');
    const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;  // the open below reports what is wrong with the folder
    std::vector<std::string> stale;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string digits = name.substr(prefix.size());
        if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
        const long pid = std::stol(digits);
        if (pid <= 0 || pid == (long)::getpid()) continue;
        if (::kill((pid_t)pid, 0) != 0 && errno == ESRCH) stale.push_back(name);
    }
    ::closedir(d);
    for (const std::string& name : stale) (void)::unlink(join_path(dir, name).c_str());
}

}  // namespace

// The temporary name is in the target's folder (rename is only atomic within one file system) and
// carries our pid, so two processes writing the same target do not trample each other's temp file.
AtomicFile::AtomicFile(const std::string& path) : path_(path), temp_(path + ".tmp." + std::to_string((long)::getpid())) {
    remove_stale_temps(path_);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd_ < 0) fail_errno("write", path_);
}

AtomicFile::~AtomicFile() {
    if (temp_.empty()) return;  // committed
    if (fd_ >= 0) ::close(fd_);
    ::unlink(temp_.c_str());
}

// Any failure removes the temporary file, then throws naming the target and the reason.
void AtomicFile::fail() {
    int saved = errno;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::unlink(temp_.c_str());
    temp_.clear();
    errno = saved;
    fail_errno("write", path_);
}

void AtomicFile::write(const void* data, size_t n) {
    if (!write_all(fd_, static_cast<const char*>(data), n)) fail();
}

void AtomicFile::commit() {
    if (::fsync(fd_) != 0) fail();  // on disk before it gets the real name
    if (::close(fd_) != 0) fd_ = -1, fail();
    fd_ = -1;
    if (::rename(temp_.c_str(), path_.c_str()) != 0) fail();
    temp_.clear();
    fsync_dir(parent_dir(path_));
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    AtomicFile file(path);
    file.write(bytes);
    file.commit();
}

void make_dirs(const std::string& path) {
    if (path.empty()) throw Error("cannot create a directory with an empty name");
    // Create each prefix that ends before a '/', then the whole path: "a/b/c" -> "a", "a/b", "a/b/c".
    for (size_t end = 1; end <= path.size(); ++end) {
        if (end < path.size() && path[end] != '/') continue;
        const std::string prefix = path.substr(0, end);
        if (is_directory(prefix)) continue;
        if (::mkdir(prefix.c_str(), 0755) == 0) continue;
        if (errno == EEXIST && is_directory(prefix)) continue;  // made by someone else meanwhile
        if (errno == EEXIST)
            throw Error("cannot create directory " + quoted(path) + ": " + quoted(prefix) + " exists and is not a directory");
        fail_errno("create directory", path);
    }
}

std::string join_path(const std::string& dir, const std::string& name) {
    if (dir.empty()) return name;
    if (dir.back() == '/') return dir + name;
    return dir + "/" + name;
}

// ---- ByteWriter: append the bytes of each value as they lie in memory

void ByteWriter::raw(const void* p, size_t n) { bytes_.append(static_cast<const char*>(p), n); }
void ByteWriter::u32(uint32_t v) { raw(&v, sizeof v); }
void ByteWriter::u64(uint64_t v) { raw(&v, sizeof v); }
void ByteWriter::i64(int64_t v) { raw(&v, sizeof v); }
void ByteWriter::f64(double v) { raw(&v, sizeof v); }
void ByteWriter::floats(const float* p, size_t n) { raw(p, n * sizeof(float)); }
void ByteWriter::doubles(const double* p, size_t n) { raw(p, n * sizeof(double)); }

void ByteWriter::str(const std::string& s) {
    u64(s.size());
    raw(s.data(), s.size());
}

// ---- ByteReader: the same, in reverse, checking that the bytes are there first

ByteReader::ByteReader(const std::string& bytes, const std::string& source) : bytes_(bytes), source_(source) {}

void ByteReader::need(size_t n, const char* what) const {
    if (n <= remaining()) return;
    throw Error(quoted(source_) + " is truncated: reading '" + what + "' needs " + std::to_string(n) +
                " bytes at offset " + std::to_string(offset_) + ", only " + std::to_string(remaining()) + " remain");
}

void ByteReader::raw(void* out, size_t n, const char* what) {
    need(n, what);
    if (n > 0) std::memcpy(out, bytes_.data() + offset_, n);
    offset_ += n;
}

// A number as the writer stored it: its bytes, copied out (any alignment).
template <class T>
static T read_value(ByteReader& r, const char* what) {
    T v;
    r.raw(&v, sizeof v, what);
    return v;
}

uint32_t ByteReader::u32(const char* what) { return read_value<uint32_t>(*this, what); }
uint64_t ByteReader::u64(const char* what) { return read_value<uint64_t>(*this, what); }
int64_t ByteReader::i64(const char* what) { return read_value<int64_t>(*this, what); }
double ByteReader::f64(const char* what) { return read_value<double>(*this, what); }

void ByteReader::need_array(size_t n, size_t element_size, const char* what) const {
    // Compare counts before multiplying, so a corrupt huge n cannot overflow n * 4 into a small number.
    if (n <= remaining() / element_size) return;
    throw Error(quoted(source_) + " is truncated: reading '" + what + "' needs " + std::to_string(n) + " x " +
                std::to_string(element_size) + " bytes at offset " + std::to_string(offset_) + ", only " +
                std::to_string(remaining()) + " remain");
}

void ByteReader::floats(float* out, size_t n, const char* what) {
    need_array(n, sizeof(float), what);
    raw(out, n * sizeof(float), what);
}

void ByteReader::doubles(double* out, size_t n, const char* what) {
    need_array(n, sizeof(double), what);
    raw(out, n * sizeof(double), what);
}

std::string ByteReader::str(const char* what) {
    uint64_t n = u64(what);
    need(n, what);  // a corrupt length fails here, before we allocate it
    std::string s = bytes_.substr(offset_, n);
    offset_ += n;
    return s;
}

void ByteReader::expect_end() const {
    if (remaining() == 0) return;
    throw Error(quoted(source_) + " has " + std::to_string(remaining()) + " unexpected bytes after its end");
}

}  // namespace train
