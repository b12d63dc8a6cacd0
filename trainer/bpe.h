// bpe.h: a byte-level BPE tokenizer (byte pair encoding), trained on the text it will tokenize.
//
// The idea (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword Units"): start
// from a vocabulary of single symbols and repeatedly add the most frequent pair of adjacent symbols as
// a new symbol. The merges learned, in order, are the tokenizer. Byte-level (Radford et al. 2019, the
// GPT-2 paper): the starting symbols are the 256 byte values, so every byte string can be encoded --
// invalid UTF-8 and NUL bytes included -- and decode(encode(x)) == x exactly. Token ids:
//     0..255         the byte with that value
//     256 + i        merge i: the bytes of merges()[i].first followed by those of merges()[i].second
//
// Chunks. Before counting pairs, text is cut into chunks and merges never cross a chunk boundary, so
// a token never spans "end of one word + start of the next" (GPT-2 does the same with a regex). Each
// byte is in one of four classes:
//     letter   A-Z a-z, and every byte >= 0x80 (so a UTF-8 word such as "café" stays in one chunk)
//     digit    0-9
//     space    ' ' \t \n \v \f \r
//     other    everything else: punctuation, NUL and the other control bytes
// Starting where the previous chunk ended, the next chunk is:
//     1. a ' ' followed by a non-space byte: the space plus the run of that byte's class (" hello",
//        " 42", " --");
//     2. a letter, digit or other byte: the run of its class ("hello", "42", "?!");
//     3. a space byte: the run of spaces, except that when a non-space byte follows the run, the run is
//        at least 2 long and it ends in ' ', that last ' ' is left for rule 1 ("a  b" -> "a" " " " b").
// So "Hello, world!\n\n  42" -> "Hello" "," " world" "!" "\n\n " " 42". Last, a chunk is at most
// kMaxChunk = 64 bytes: a longer one is cut every 64 bytes. Natural text rarely has such runs, but
// text without spaces does (Chinese, base64, a file of "====="), and the cost of training and encoding
// grows with the length of the chunks (1 MB of letters without a break, vocab 512: training 0.6 s
// and encoding 0.3 s with the cut, 5 s and 3.6 s without).
// Differences from GPT-2's regex: no special cases for English contractions ('s 't 're 've 'm 'll 'd:
// "don't" -> "don" "'" "t"); Unicode punctuation and spaces count as letters (all bytes >= 0x80 do);
// and a run such as "\n\n" before a word stays whole (GPT-2 splits off its last "\n").
//
// Training counts each pair once per position it occurs at ("aaa" holds (a, a) twice), weighted by how
// often its chunk occurs; the most frequent pair wins, ties going to the smallest (first id, second
// id). The result depends only on the text, not on the machine or the run. Encoding applies the merges
// by rank (see encode), which reproduces exactly the tokens training ended with.
//
// File format (written by save, checked by load); numbers are little-endian, like the checkpoints:
//     8 bytes   the magic "BPETOK1\n"
//     u32       n, the number of merges (0 .. 65280)
//     n times   u32 first, u32 second: merge i makes token 256 + i, and both ids must be < 256 + i
// and nothing after. The vocabulary size is 256 + n. There are no special tokens (no <|endoftext|>).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data.h"

namespace train {

class BpeTokenizer : public Tokenizer {
public:
    static constexpr int kByteTokens = 256;    // ids 0..255 are the bytes
    static constexpr int kMaxVocab = 65536;    // so that any id fits in 16 bits
    static constexpr int kMaxChunk = 64;       // bytes; a longer chunk is cut (see the top of this file)

    // Learns merges on `text` until the vocabulary has vocab_size tokens (256 byte tokens + merges).
    // vocab_size outside 256..65536 throws train::Error. Training stops early when no pair of adjacent
    // tokens occurs at least twice any more (a short or repetitive text): vocab_size() then says how
    // many tokens there are, which is less than asked.
    static BpeTokenizer train(const std::string& text, int vocab_size);

    // Reads a file written by save(). Throws train::Error naming path if it is missing or unreadable,
    // or corrupt in any way (wrong magic, truncated, bytes after the end, too many merges, a merge of a
    // token that does not exist yet, a merge repeated, a token longer than kMaxChunk bytes).
    static BpeTokenizer load(const std::string& path);
    void save(const std::string& path) const;  // atomic: a reader sees the old file or the new one

    std::string name() const override { return "bpe"; }
    int vocab_size() const override { return kByteTokens + (int)merges_.size(); }

    // The chunks of text (see the top of this file), then each chunk's merges applied by rank: among
    // the adjacent pairs that have a merge, the one learned first is merged (every occurrence, left
    // to right), until no pair has a merge. Chunks seen before come from a cache, so encode is
    // logically const; a mutex guards the cache, so calls from several threads are safe (and serial).
    Tokens encode(const std::string& text) const override;
    // The bytes of each token, concatenated. An id outside 0..vocab_size()-1 throws train::Error.
    std::string decode(const Tokens& tokens) const override;

    const std::vector<std::pair<int, int>>& merges() const { return merges_; }  // merge i creates 256 + i
    std::string token_bytes(int id) const;  // the bytes token id stands for; out of range throws

private:
    explicit BpeTokenizer(std::vector<std::pair<int, int>> merges);  // merges already checked

    Tokens encode_chunk(const std::string& chunk) const;
    void check_id(int id) const;

    std::vector<std::pair<int, int>> merges_;
    std::vector<std::string> token_bytes_;   // id -> the bytes it stands for
    std::unordered_map<uint32_t, int> rank_;  // pair (see pair_key in bpe.cpp) -> index of its merge

    // Chunk -> its tokens. Shared by copies, which is right: their merges are the same and never change.
    struct Cache;
    std::shared_ptr<Cache> cache_;
};

// The chunks that merges stay within (the rules at the top of this file), in order; they concatenate
// back to text. For tests and for printing.
std::vector<std::string> bpe_chunks(const std::string& text);

}  // namespace train
