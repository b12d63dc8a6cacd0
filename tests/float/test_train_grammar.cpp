// The built-in grammar: generator and parser agree exactly, probabilities add up, seeds behave.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <sstream>

#include "../../trainer/error.h"
#include "../../trainer/grammar.h"

using namespace train;

static std::vector<size_t> sentence_lengths(const std::string& text) {
    std::vector<size_t> lengths;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        lengths.push_back(end - pos + 1);
        pos = end + 1;
    }
    return lengths;
}

TEST_CASE("grammar: the table is a proper deterministic automaton", "[train][grammar]") {
    const auto& states = grammar_states();
    std::set<std::string> words;
    for (const GrammarState& s : states) {
        INFO("state " << s.name);
        double total = 0;
        std::set<std::string> seen;
        for (const GrammarArc& a : s.arcs) {
            total += a.prob;
            CHECK(seen.insert(a.word).second);  // one arc per word: deterministic
            CHECK(a.next >= 0);
            CHECK(a.next < (int)states.size());
            CHECK(a.log_prob == std::log(a.prob));
            bool lowercase = a.word == "." || std::all_of(a.word.begin(), a.word.end(), [](char c) { return c >= 'a' && c <= 'z'; });
            CHECK(lowercase);
            if (a.word != ".") words.insert(a.word);
        }
        CHECK(total == Approx(1.0).epsilon(1e-12));
    }
    INFO(words.size() << " words");
    CHECK(words.size() >= 30);
    CHECK(words.size() <= 80);
    CHECK(states.size() == 14);
}

TEST_CASE("grammar: parsing generated text gives back exactly the generator's log-probability", "[train][grammar]") {
    Corpus c = generate_corpus(7, 20000);
    CHECK(c.text.size() >= 20000);
    CHECK(c.text.back() == '\n');
    CHECK(grammar_log_prob(c.text) == c.log_prob);  // bit-identical: same numbers added in the same order

    // and sentence by sentence the pieces add up to the same total (up to rounding)
    double sum = 0;
    size_t pos = 0;
    while (pos < c.text.size()) {
        size_t end = c.text.find('\n', pos) + 1;
        sum += grammar_log_prob(c.text.substr(pos, end - pos));
        pos = end;
    }
    CHECK(sum == Approx(c.log_prob).epsilon(1e-12));
}

TEST_CASE("grammar: the same seed gives the same text, other seeds other texts", "[train][grammar]") {
    Corpus a = generate_corpus(42, 5000), b = generate_corpus(42, 5000), c = generate_corpus(43, 5000);
    CHECK(a.text == b.text);
    CHECK(a.log_prob == b.log_prob);
    CHECK(a.text != c.text);
    CHECK(a.text.substr(0, 200) != c.text.substr(0, 200));
    // a longer corpus from the same seed extends the shorter one: whole sentences, same draws
    Corpus longer = generate_corpus(42, 10000);
    CHECK(longer.text.compare(0, a.text.size(), a.text) == 0);
    CHECK(generate_corpus(1, 0).text.empty());
}

// Every sentence of at most max_bytes bytes, by depth-first search over the automaton.
static void enumerate(size_t max_bytes, const std::function<void(const std::string&, double)>& visit) {
    const auto& states = grammar_states();
    std::function<void(int, std::string, double)> walk = [&](int state, std::string text, double log_prob) {
        for (const GrammarArc& a : states[state].arcs) {
            if (a.word == ".") {
                if (text.size() + 2 <= max_bytes) visit(text + ".\n", log_prob + a.log_prob);
                continue;
            }
            std::string longer = text.empty() ? a.word : text + " " + a.word;
            if (longer.size() + 2 <= max_bytes) walk(a.next, longer, log_prob + a.log_prob);
        }
    };
    walk(0, "", 0.0);
}

// P(a sentence has at most max_bytes bytes), by dynamic programming over (state, bytes so far).
static double mass_up_to(size_t max_bytes) {
    const auto& states = grammar_states();
    std::vector<std::vector<double>> p(max_bytes + 1, std::vector<double>(states.size(), 0.0));
    p[0][0] = 1;  // bytes counted as: each word with the separator after it, "." as the final "\n"
    double ended = 0;
    for (size_t used = 0; used <= max_bytes; ++used)
        for (size_t s = 0; s < states.size(); ++s) {
            if (p[used][s] == 0) continue;
            for (const GrammarArc& a : states[s].arcs) {
                size_t after = used + (a.word == "." ? 1 : a.word.size() + 1);
                if (after > max_bytes) continue;
                if (a.word == ".") ended += p[used][s] * a.prob;
                else p[after][a.next] += p[used][s] * a.prob;
            }
        }
    return ended;
}

TEST_CASE("grammar: enumerated short sentences parse to their probability; all sentences sum to 1", "[train][grammar]") {
    const size_t max_bytes = 16;
    double total = 0;
    size_t count = 0;
    enumerate(max_bytes, [&](const std::string& sentence, double log_prob) {
        count++;
        total += std::exp(log_prob);
        REQUIRE(grammar_log_prob(sentence) == Approx(log_prob).epsilon(1e-12));
    });
    INFO(count << " sentences of at most " << max_bytes << " bytes");
    CHECK(count > 100);
    CHECK(total == Approx(mass_up_to(max_bytes)).epsilon(1e-9));

    // The probability leaks nowhere: sentences up to 1000 bytes carry all of it but a sliver.
    CHECK(mass_up_to(1000) == Approx(1.0).epsilon(1e-9));
    CHECK(mass_up_to(1000) <= 1.0 + 1e-12);
}

TEST_CASE("grammar: a long sample's information per byte matches the exact entropy rate", "[train][grammar]") {
    GrammarRates r = grammar_rates();
    Corpus c = generate_corpus(2024, 100000);
    std::vector<size_t> lengths = sentence_lengths(c.text);
    std::sort(lengths.begin(), lengths.end());
    double mean_length = (double)c.text.size() / (double)lengths.size();
    std::ostringstream info;
    info << "100 kB sample: optimum " << c.optimum() << " nats/byte (exact rate " << r.nats_per_byte << "), "
         << lengths.size() << " sentences, length mean " << mean_length << " (exact " << r.bytes_per_sentence
         << "), min " << lengths.front() << ", median " << lengths[lengths.size() / 2] << ", 90th percentile "
         << lengths[lengths.size() * 9 / 10] << ", max " << lengths.back();
    INFO(info.str());
    WARN(info.str());  // shown on every run: the numbers the trainer's summary quotes
    CHECK(c.sentences == lengths.size());
    CHECK(c.optimum() == Approx(r.nats_per_byte).epsilon(0.03));
    CHECK(mean_length == Approx(r.bytes_per_sentence).epsilon(0.03));
    CHECK(r.nats_per_byte > 0.45);
    CHECK(r.nats_per_byte < 1.2);
    CHECK(r.bytes_per_sentence > 20);
    CHECK(r.bytes_per_sentence < 60);
    // a validation corpus from another seed has nearly the same optimum
    Corpus val = generate_corpus(2025, 20000);
    CHECK(val.optimum() == Approx(c.optimum()).epsilon(0.05));
}

TEST_CASE("grammar: text outside the language is rejected with a one-line reason", "[train][grammar]") {
    auto message = [](const std::string& text) {
        try {
            grammar_log_prob(text);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("(accepted)");
    };
    CHECK(grammar_log_prob("") == 0.0);
    CHECK(std::isfinite(grammar_log_prob("the dog runs.\n")));
    CHECK(grammar_log_prob("the dog runs.\n") < grammar_log_prob("he runs.\n") + 10);

    CHECK(message("the dogs runs.\n") == "text is not in the built-in grammar: sentence 1 (byte 9): 'runs' after 'dogs'; "
                                         "expected a verb agreeing with a plural subject");
    CHECK(message("a dogs run.\n").find("'dogs' after 'a'; expected a singular noun or an adjective") != std::string::npos);
    CHECK(message("if he runs.\n").find("sentence ends after 'runs'; expected an adverb, 'and' or 'then'") != std::string::npos);
    CHECK(message("he runs.\nhe  runs.\n").find("sentence 2 (byte 12): an empty word") != std::string::npos);
    CHECK(message("he runs").find("without the final") != std::string::npos);
    CHECK(message("he runs\n").find("must end with '.'") != std::string::npos);
    CHECK(message("The dog runs.\n").find("'The' after '(start of sentence)'") != std::string::npos);
    CHECK(message("the dog.\n").find("sentence ends after 'dog'") != std::string::npos);
    for (const char* bad : {"the dogs runs.\n", "he runs", "he runs\n", "\n", ".\n", " he runs.\n", "he runs .\n"})
        CHECK(message(bad).find('\n') == std::string::npos);
}
