// grammar.h: the built-in corpus, so that `./train` needs no file and no download.
//
// Sentences come from a small probabilistic grammar of English-like text, written as a deterministic
// automaton over words (the table is in grammar.cpp). Because we know the generator, we know the exact
// probability of any text it produced, and so the best loss any model could reach on it:
//
//     optimum (nats per byte) = -log P(text) / bytes(text)
//
// Why that is exact at the byte level: words are lowercase letters separated by single spaces, and a
// sentence ends with ".\n", so the bytes determine the words; and each state has at most one arc per
// word, so the words determine the path. One text, one path: P(bytes) = P(words) = the product of the
// probabilities of the arcs taken.
//
// (A model that sees only a window of T bytes cannot quite reach it: the first bytes of a window do
// not know whether they are inside an "if" clause. With sentences of ~40 bytes and T >= 64 the
// difference is small.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace train {

// One arc of the automaton: emit `word`, then move to state `next`.
// The word "." ends the sentence: it is written as ".\n" with no space before it.
struct GrammarArc {
    std::string word;
    double prob;      // the arcs of a state sum to 1
    double log_prob;  // log(prob), precomputed so generator and parser add the very same numbers
    int next;
};

struct GrammarState {
    std::string name;    // "S", "N", ... (see the table in grammar.cpp)
    std::string expect;  // for error messages: "a noun or an adjective"
    std::vector<GrammarArc> arcs;
};

// The automaton; state 0 is the start of a sentence.
const std::vector<GrammarState>& grammar_states();

// Generated text and its exact probability under the grammar.
struct Corpus {
    std::string text;      // whole sentences, each ending with ".\n"
    double log_prob = 0;   // natural log of P(text)
    size_t sentences = 0;

    // The best achievable loss on this text, in nats per byte: -log_prob / bytes.
    double optimum() const;
};

// Sentences drawn with ag::Rng(seed) until the text holds at least min_bytes bytes (always whole
// sentences, so it starts and ends at a sentence boundary). The same seed gives the same text.
// For a train/val split call it twice with different seeds; each corpus has its own optimum().
Corpus generate_corpus(uint64_t seed, size_t min_bytes);

// log P(text) by parsing: text must be whole sentences of the grammar, starting at the start of a
// sentence and ending with ".\n". Throws train::Error naming the sentence, the byte offset and what
// was expected when it is not.
double grammar_log_prob(const std::string& text);

// Exact long-run averages of the grammar, from its table (no sampling): the expected information and
// length of one sentence, and their ratio, the entropy rate in nats per byte, which is what optimum()
// of a long corpus converges to.
struct GrammarRates {
    double nats_per_sentence;
    double bytes_per_sentence;
    double nats_per_byte;
};
GrammarRates grammar_rates();

}  // namespace train
