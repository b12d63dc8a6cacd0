// bpe.cpp: byte-level BPE: cutting text into chunks, learning merges, encoding, decoding, the file.
//
// Read top to bottom: chunks, the pair helpers that training and encoding share, training, then the
// tokenizer's methods and its file.

#include "bpe.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>
#include <queue>

#include "error.h"
#include "files.h"

namespace train {

namespace {

// ---- chunks: where merges may not cross (rules at the top of bpe.h)

enum class ByteClass { Letter, Digit, Space, Other };

ByteClass classify(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return ByteClass::Letter;
    if (c >= '0' && c <= '9') return ByteClass::Digit;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') return ByteClass::Space;
    return ByteClass::Other;
}

ByteClass class_at(const std::string& text, size_t i) { return classify((unsigned char)text[i]); }

// The end of the run of bytes of class cls that starts at i, stopping at limit at the latest.
size_t run_end(const std::string& text, size_t i, ByteClass cls, size_t limit) {
    while (i < limit && class_at(text, i) == cls) ++i;
    return i;
}

// The end of the chunk that starts at `start` (< text.size()). A chunk is cut after kMaxChunk bytes
// (scanning no further, so that a long run costs linear time, not quadratic).
size_t chunk_end(const std::string& text, size_t start) {
    const size_t n = text.size();
    const size_t limit = std::min(n, start + (size_t)BpeTokenizer::kMaxChunk);
    // Rule 1: one ' ' glues to the run after it, so " the" is one chunk and can become one token.
    if (text[start] == ' ' && start + 1 < n && class_at(text, start + 1) != ByteClass::Space)
        return run_end(text, start + 1, class_at(text, start + 1), limit);
    // Rule 2: a run of letters, of digits, or of other bytes.
    const ByteClass cls = class_at(text, start);
    if (cls != ByteClass::Space) return run_end(text, start, cls, limit);
    // Rule 3: a run of spaces, leaving its last ' ' to the word after it (that space then goes by rule 1).
    const size_t end = run_end(text, start, ByteClass::Space, limit);
    const bool word_follows = end < n && class_at(text, end) != ByteClass::Space;
    if (word_follows && end - start >= 2 && text[end - 1] == ' ') return end - 1;
    return end;
}

// ---- pairs of adjacent tokens

// A pair as one number, first id in the high 16 bits (every id is < 65536). Comparing keys compares
// pairs by first id, then second: that is the tie-break of training.
uint32_t pair_key(int a, int b) { return (uint32_t)a << 16 | (uint32_t)b; }
int first_of(uint32_t key) { return (int)(key >> 16); }
int second_of(uint32_t key) { return (int)(key & 0xFFFF); }

// Replaces each (a, b) in tokens by merged, scanning left to right: "a a a" with (a, a) -> "X a".
void merge_pair(std::vector<int>& tokens, int a, int b, int merged) {
    size_t out = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (i + 1 < tokens.size() && tokens[i] == a && tokens[i + 1] == b) {
            tokens[out++] = merged;
            ++i;  // b is used up
        } else {
            tokens[out++] = tokens[i];
        }
    }
    tokens.resize(out);
}

bool contains_pair(const std::vector<int>& tokens, int a, int b) {
    for (size_t i = 0; i + 1 < tokens.size(); ++i)
        if (tokens[i] == a && tokens[i + 1] == b) return true;
    return false;
}

std::vector<int> bytes_to_ids(const std::string& bytes) {
    std::vector<int> ids(bytes.size());
    for (size_t i = 0; i < bytes.size(); ++i) ids[i] = (unsigned char)bytes[i];
    return ids;
}

// ---- training
//
// The text has few distinct chunks compared with its length (tinyshakespeare: 1.1 MB, 295k chunks,
// 15k distinct), so training works on the distinct chunks, each with how often it occurs. A merge only
// changes the chunks that contain its pair, so instead of recounting every pair after each merge we
// keep, for each pair, its count and the chunks it occurs in, and update just those chunks.

using PairCounts = std::unordered_map<uint32_t, int64_t>;

struct Chunk {
    std::vector<int> tokens;  // starts as its bytes; merges shorten it
    int64_t count = 0;        // how many times the chunk occurs in the text
};

// Adds weight to the count of every adjacent pair of tokens (a negative weight takes them away).
void add_pairs(const std::vector<int>& tokens, int64_t weight, PairCounts& counts) {
    for (size_t i = 0; i + 1 < tokens.size(); ++i) counts[pair_key(tokens[i], tokens[i + 1])] += weight;
}

// An entry of the queue of candidate pairs. The queue keeps old entries when a count changes (it has
// no "update"); an entry whose count is not the pair's current count is stale and skipped when it
// reaches the top ("lazy invalidation"). Every change of a count pushes a fresh entry.
struct Candidate {
    int64_t count;
    uint32_t pair;
};

// The queue's order: more frequent first, then the smaller pair.
struct ComesAfter {
    bool operator()(const Candidate& x, const Candidate& y) const {
        if (x.count != y.count) return x.count < y.count;
        return x.pair > y.pair;
    }
};

class MergeLearner {
public:
    explicit MergeLearner(const std::string& text) {
        count_chunks(text);
        count_pairs();
    }

    // The most frequent pair, if one occurs at least twice.
    bool best_pair(uint32_t& pair) {
        while (!queue_.empty()) {
            Candidate top = queue_.top();
            auto it = counts_.find(top.pair);
            if (it == counts_.end() || it->second != top.count) {  // stale: the count changed since
                queue_.pop();
                continue;
            }
            if (top.count < 2) return false;
            queue_.pop();
            pair = top.pair;
            return true;
        }
        return false;
    }

    // Replaces the pair by token new_id in every chunk that has it, and updates the counts.
    void merge(uint32_t pair, int new_id) {
        const int a = first_of(pair), b = second_of(pair);
        // After this merge (a, b) never occurs again: a merge only makes pairs that contain its new
        // token, and a and b are older. So its list of holders is needed this once.
        std::vector<int> holders = std::move(where_[pair]);
        where_.erase(pair);

        // Take each affected chunk's pairs away, merge, add its new pairs back: the difference is what
        // the merge changed. (Pairs far from the merge come and go unchanged: their change sums to 0.)
        PairCounts change;
        for (int c : holders) {
            Chunk& chunk = chunks_[c];
            if (!contains_pair(chunk.tokens, a, b)) continue;  // an earlier merge used it up
            add_pairs(chunk.tokens, -chunk.count, change);
            merge_pair(chunk.tokens, a, b, new_id);
            add_pairs(chunk.tokens, +chunk.count, change);
            note_pairs_with(c, new_id);
        }
        apply(change);
    }

private:
    // The distinct chunks of the text and how often each occurs, in order of first appearance.
    void count_chunks(const std::string& text) {
        std::unordered_map<std::string, int> index;  // chunk -> its place in chunks_
        for (size_t start = 0, end; start < text.size(); start = end) {
            end = chunk_end(text, start);
            auto inserted = index.emplace(text.substr(start, end - start), (int)chunks_.size());
            if (inserted.second) chunks_.push_back({bytes_to_ids(inserted.first->first), 0});
            chunks_[inserted.first->second].count += 1;
        }
    }

    // The first count of every pair, where each occurs, and the queue of candidates.
    void count_pairs() {
        for (int c = 0; c < (int)chunks_.size(); ++c) {
            add_pairs(chunks_[c].tokens, chunks_[c].count, counts_);
            const std::vector<int>& t = chunks_[c].tokens;
            for (size_t i = 0; i + 1 < t.size(); ++i) note_holder(pair_key(t[i], t[i + 1]), c);
        }
        std::vector<Candidate> all;
        for (const auto& [pair, count] : counts_) all.push_back({count, pair});
        queue_ = Queue(ComesAfter(), std::move(all));
    }

    // Records that chunk c holds pair (once: a chunk's pairs are noted together, so checking the last
    // holder is enough to avoid repeats).
    void note_holder(uint32_t pair, int c) {
        std::vector<int>& holders = where_[pair];
        if (holders.empty() || holders.back() != c) holders.push_back(c);
    }

    // After a merge made new_id, the only pairs new to chunk c are those that contain new_id.
    void note_pairs_with(int c, int new_id) {
        const std::vector<int>& t = chunks_[c].tokens;
        for (size_t i = 0; i + 1 < t.size(); ++i)
            if (t[i] == new_id || t[i + 1] == new_id) note_holder(pair_key(t[i], t[i + 1]), c);
    }

    // Adds the changes to the counts, and queues the new count of each pair that changed.
    void apply(const PairCounts& change) {
        for (const auto& [pair, delta] : change) {
            if (delta == 0) continue;
            const int64_t count = (counts_[pair] += delta);
            if (count == 0) {
                counts_.erase(pair);  // its queue entries are now stale
            } else {
                queue_.push({count, pair});
            }
        }
    }

    using Queue = std::priority_queue<Candidate, std::vector<Candidate>, ComesAfter>;

    std::vector<Chunk> chunks_;
    PairCounts counts_;                                  // pair -> occurrences in the text (never 0)
    std::unordered_map<uint32_t, std::vector<int>> where_;  // pair -> chunks that hold (or held) it
    Queue queue_;
};

std::string quoted(const std::string& path) { return "'" + path + "'"; }

const char kMagic[8] = {'B', 'P', 'E', 'T', 'O', 'K', '1', '\n'};

}  // namespace

std::vector<std::string> bpe_chunks(const std::string& text) {
    std::vector<std::string> chunks;
    for (size_t start = 0, end; start < text.size(); start = end) {
        end = chunk_end(text, start);
        chunks.push_back(text.substr(start, end - start));
    }
    return chunks;
}

// ---- the tokenizer

struct BpeTokenizer::Cache {
    // Distinct chunks of a large corpus can be millions; past this many the cache starts over.
    static constexpr size_t kMaxEntries = 1 << 18;
    std::mutex mutex;
    std::unordered_map<std::string, Tokens> chunks;
};

// Training, step by step: cut the text into chunks and count the distinct ones; count every pair of
// adjacent bytes; then, until the vocabulary is full or no pair occurs twice: take the most frequent
// pair, give it the next id, and replace it in every chunk that has it (updating the counts).
BpeTokenizer BpeTokenizer::train(const std::string& text, int vocab_size) {
    if (vocab_size < kByteTokens || vocab_size > kMaxVocab)
        throw Error("BPE vocab size " + std::to_string(vocab_size) + " is out of range (256..65536: the 256 byte " +
                    "tokens plus up to 65280 merges)");
    MergeLearner learner(text);
    std::vector<std::pair<int, int>> merges;
    uint32_t pair;
    while (kByteTokens + (int)merges.size() < vocab_size && learner.best_pair(pair)) {
        learner.merge(pair, kByteTokens + (int)merges.size());
        merges.push_back({first_of(pair), second_of(pair)});
    }
    return BpeTokenizer(std::move(merges));
}

BpeTokenizer::BpeTokenizer(std::vector<std::pair<int, int>> merges)
    : merges_(std::move(merges)), cache_(std::make_shared<Cache>()) {
    for (int byte = 0; byte < kByteTokens; ++byte) token_bytes_.push_back(std::string(1, (char)byte));
    for (int i = 0; i < (int)merges_.size(); ++i) {
        const auto [a, b] = merges_[i];
        token_bytes_.push_back(token_bytes_[a] + token_bytes_[b]);
        rank_[pair_key(a, b)] = i;
    }
}

// One chunk, by rank: merge the pair learned earliest, again and again. This gives the tokens training
// ended with: when training applied merge m to a chunk, no pair of an earlier merge was left in it
// (a merge replaces all its pairs and only makes pairs with its new token), so training too applied,
// each time, the earliest merge whose pair was present, and left to right as here.
Tokens BpeTokenizer::encode_chunk(const std::string& chunk) const {
    Tokens tokens = bytes_to_ids(chunk);
    for (;;) {
        int best = INT_MAX;  // the lowest rank among the pairs present
        for (size_t i = 0; i + 1 < tokens.size(); ++i) {
            auto it = rank_.find(pair_key(tokens[i], tokens[i + 1]));
            if (it != rank_.end() && it->second < best) best = it->second;
        }
        if (best == INT_MAX) return tokens;
        merge_pair(tokens, merges_[best].first, merges_[best].second, kByteTokens + best);
    }
}

Tokens BpeTokenizer::encode(const std::string& text) const {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    Tokens out;
    out.reserve(text.size() / 2);
    for (size_t start = 0, end; start < text.size(); start = end) {
        end = chunk_end(text, start);
        std::string chunk = text.substr(start, end - start);
        auto it = cache_->chunks.find(chunk);
        if (it == cache_->chunks.end()) {
            if (cache_->chunks.size() >= Cache::kMaxEntries) cache_->chunks.clear();
            Tokens tokens = encode_chunk(chunk);
            it = cache_->chunks.emplace(std::move(chunk), std::move(tokens)).first;
        }
        out.insert(out.end(), it->second.begin(), it->second.end());
    }
    return out;
}

void BpeTokenizer::check_id(int id) const {
    if (id < 0 || id >= vocab_size())
        throw Error("token " + std::to_string(id) + " is not in the BPE vocabulary (ids 0.." +
                    std::to_string(vocab_size() - 1) + ")");
}

std::string BpeTokenizer::decode(const Tokens& tokens) const {
    std::string text;
    for (int id : tokens) {
        check_id(id);
        text += token_bytes_[id];
    }
    return text;
}

std::string BpeTokenizer::token_bytes(int id) const {
    check_id(id);
    return token_bytes_[id];
}

// ---- the file (format at the top of bpe.h)

void BpeTokenizer::save(const std::string& path) const {
    ByteWriter out;
    out.raw(kMagic, sizeof kMagic);
    out.u32((uint32_t)merges_.size());
    for (const auto& [a, b] : merges_) {
        out.u32((uint32_t)a);
        out.u32((uint32_t)b);
    }
    write_file_atomic(path, out.bytes());
}

BpeTokenizer BpeTokenizer::load(const std::string& path) {
    const std::string bytes = read_file(path);
    const std::string corrupt = quoted(path) + " is corrupt: ";
    if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        throw Error(quoted(path) + " is not a BPE tokenizer file (it does not start with \"BPETOK1\")");

    ByteReader in(bytes, path);  // (it quotes the path itself)
    char magic[sizeof kMagic];
    in.raw(magic, sizeof magic, "magic");
    const uint32_t n = in.u32("number of merges");
    const uint32_t max_merges = kMaxVocab - kByteTokens;
    if (n > max_merges)
        throw Error(corrupt + "it has " + std::to_string(n) + " merges, more than the " +
                    std::to_string(max_merges) + " that fit in a vocabulary of 65536");
    const size_t need = (size_t)n * 8, have = in.remaining();
    if (have < need)
        throw Error(quoted(path) + " is truncated: its " + std::to_string(n) + " merges need " + std::to_string(need) +
                    " bytes after the header, only " + std::to_string(have) + " remain");
    if (have > need)
        throw Error(corrupt + "it has " + std::to_string(have - need) +
                    " unexpected bytes after the end of its merges");

    std::vector<std::pair<int, int>> merges;
    std::unordered_map<uint32_t, uint32_t> seen;  // pair -> the merge that made it
    // Token id -> its length in bytes. Training merges within a chunk, so no token it makes is longer
    // than kMaxChunk; a longer one is a hostile file (a chain (0,0), (256,256), ... doubles the length
    // with every merge: 40 merges would ask for a terabyte).
    std::vector<int> length(kByteTokens, 1);
    for (uint32_t i = 0; i < n; ++i) {
        uint32_t ids[2] = {in.u32("merge"), in.u32("merge")};
        for (uint32_t id : ids)
            if (id >= kByteTokens + i)  // merge i may use bytes and the tokens of merges 0..i-1
                throw Error(corrupt + "merge " + std::to_string(i) + " refers to token " + std::to_string(id) +
                            ", which does not exist yet");
        auto [it, is_new] = seen.emplace(pair_key((int)ids[0], (int)ids[1]), i);
        if (!is_new)
            throw Error(corrupt + "merge " + std::to_string(i) + " repeats merge " + std::to_string(it->second) +
                        " (" + std::to_string(ids[0]) + ", " + std::to_string(ids[1]) + ")");
        length.push_back(length[ids[0]] + length[ids[1]]);
        if (length.back() > kMaxChunk)
            throw Error(corrupt + "merge " + std::to_string(i) + " makes a token of " +
                        std::to_string(length.back()) + " bytes; trained tokens are at most " +
                        std::to_string(kMaxChunk) + ", one chunk");
        merges.push_back({(int)ids[0], (int)ids[1]});
    }
    return BpeTokenizer(std::move(merges));
}

}  // namespace train
