// files.h: reading and writing files with errors a user can act on, and a tiny binary serializer.
//
// Every failure throws train::Error with one line naming the path and the reason (strerror), e.g.
//     cannot read 'data/x.txt': No such file or directory
// Writes never leave a half-written file behind: write_file_atomic writes a temporary file in the same
// folder, flushes it to disk, and renames it over the target, so a reader sees the old file or the new
// one, never a mix. (rename() within one file system is atomic on POSIX.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace train {

// The whole file as bytes. Throws if it is missing, a directory or anything else that is not a regular
// file (a device, a FIFO), unreadable, or (unless allow_empty) empty: "'x.txt' is empty". It reads no
// more than the size the file has when opened.
std::string read_file(const std::string& path, bool allow_empty = false);

// Opens a regular file for reading, without waiting (a FIFO would block open() until a writer comes),
// and gives its size. Throws as read_file does; the caller closes the descriptor.
int open_regular_file(const std::string& path, uint64_t& size);

// Replaces path's content by bytes, atomically (see above). On failure the target is untouched, the
// temporary file is removed, and the error names the path and the reason.
void write_file_atomic(const std::string& path, const std::string& bytes);

// The same for a file written piece by piece (a checkpoint of GPT-2 is 1.5 GB: written from the
// tensors' own memory, never gathered into one string). The temporary file is created at once;
// commit() gives it the real name; if commit() is never reached (an error, an exception), the
// destructor removes the temporary file and the target stays as it was.
class AtomicFile {
public:
    explicit AtomicFile(const std::string& path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    void write(const void* data, size_t n);
    void write(const std::string& bytes) { write(bytes.data(), bytes.size()); }
    void commit();  // flush to disk, rename into place

private:
    [[noreturn]] void fail();
    std::string path_, temp_;
    int fd_ = -1;
};

// mkdir -p: creates path and any missing parents. Fine if it already exists as a directory.
void make_dirs(const std::string& path);

// Joins a folder and a file name with one '/': join_path("out", "log.csv") == "out/log.csv".
std::string join_path(const std::string& dir, const std::string& name);

// ---- binary serialization for checkpoints
//
// Numbers are stored in the machine's byte order, which is little-endian on every machine we build for
// (x86-64, ARM64); a checkpoint is not meant to travel to a big-endian machine. A string is its length
// (u64) then its bytes; an array is just its elements: the reader must know the count, so store the
// count before it when it is not implied by the model's config.

class ByteWriter {
public:
    void u32(uint32_t v);
    void u64(uint64_t v);
    void i64(int64_t v);
    void f64(double v);
    void str(const std::string& s);
    void floats(const float* p, size_t n);
    void doubles(const double* p, size_t n);
    void raw(const void* p, size_t n);

    const std::string& bytes() const { return bytes_; }

private:
    std::string bytes_;
};

// Reads what a ByteWriter wrote, in the same order. Every read is bounds-checked: reading past the end
// throws train::Error such as
//     'out/model.bin' is truncated: reading 'step' needs 8 bytes at offset 120, only 3 remain
// `what` names the field, `source` (given once) names the file.
class ByteReader {
public:
    // Keeps a reference to bytes (a checkpoint can be large; no copy), so bytes must outlive the reader.
    ByteReader(const std::string& bytes, const std::string& source);
    ByteReader(std::string&& bytes, const std::string& source) = delete;

    uint32_t u32(const char* what);
    uint64_t u64(const char* what);
    int64_t i64(const char* what);
    double f64(const char* what);
    std::string str(const char* what);
    void floats(float* out, size_t n, const char* what);
    void doubles(double* out, size_t n, const char* what);
    void raw(void* out, size_t n, const char* what);

    size_t offset() const { return offset_; }
    size_t remaining() const { return bytes_.size() - offset_; }
    // Throws "'x' has N unexpected bytes after its end" unless everything was read.
    void expect_end() const;

private:
    void need(size_t n, const char* what) const;
    void need_array(size_t n, size_t element_size, const char* what) const;

    const std::string& bytes_;
    std::string source_;
    size_t offset_ = 0;
};

}  // namespace train
