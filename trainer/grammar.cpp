// grammar.cpp: the table of the built-in grammar, its generator, its parser, and its exact rates.
//
// The automaton has 14 states: a clause of 7 states, and a copy of it for the inside of an "if"
// clause. Shares are percentages of the state's probability; a share on a group of words is split
// equally among them ("8 singular nouns 40" gives each noun 5%).
//
//  state  where we are                  arcs: words (share %) -> next state
//  -----  ----------------------------  --------------------------------------------------------------
//  S      start of a sentence, or of a  the my (35) -> N     a (15) -> NS     he she it (15) -> VS
//         clause after "and"/"then"     they we you (15) -> VP                if (20) -> IS
//  N      after "the" / "my"            6 adjectives (25) -> N       8 singular nouns (40) -> VS
//                                       8 plural nouns (35) -> VP
//  NS     after "a": singular only      6 adjectives (25) -> NS      8 singular nouns (75) -> VS
//  VS     the subject is singular       5 intransitive verbs (50) -> A    5 transitive (50) -> O
//  VP     the subject is plural         the same ten verbs without the -s ("run", "see", "have")
//  O      after a transitive verb       it them him her us me (100) -> A
//  A      the clause may end            6 adverbs (30) -> A     and (12) -> S     "." (58) -> S, the end
//  IS     start of an "if" clause       as S, without "if" (no "if" directly inside an "if")
//  IN..IO inside the "if" clause        as N..O, moving to the I- states
//  IA     the "if" clause may end       6 adverbs (30) -> IA    and (12) -> IS    then (58) -> S
//
// 65 words in all. What a model has to learn beyond spelling:
//  - number agreement: "a" admits only singular nouns; the noun, possibly several adjectives after
//    the determiner ("the big red foxes"), decides between "runs" and "run";
//  - an "if" must be answered by "then" before the sentence may end, across any number of clauses
//    joined by "and": only the state (IS..IA versus S..A) carries that memory;
//  - no adjective or noun starts with a vowel, so "a" versus "an" never arises.
// Sentences average 31.4 bytes (the shortest, "we run.\n", has 8; "and" and "if" make a long tail)
// and carry 16.1 nats: the entropy rate is 0.513 nats per byte. grammar_rates() computes these
// from the table.

#include "grammar.h"

#include <cmath>
#include <stdexcept>

#include "../autograd/rng.h"
#include "error.h"

namespace train {

namespace {

// State numbers. The "if" copy of the clause is the main clause shifted by kIfOffset.
enum StateId { S, N, NS, VS, VP, O, A, kIfOffset };
const int kNumStates = 2 * kIfOffset;

const std::vector<const char*> kAdjectives = {"big", "small", "red", "little", "happy", "brave"};
const std::vector<const char*> kSingularNouns = {"dog", "cat", "bird", "fox", "child", "man", "mouse", "girl"};
const std::vector<const char*> kPluralNouns = {"dogs", "cats", "birds", "foxes", "children", "men", "mice", "girls"};
const std::vector<const char*> kIntransitiveS = {"runs", "sleeps", "sings", "waits", "jumps"};
const std::vector<const char*> kIntransitiveP = {"run", "sleep", "sing", "wait", "jump"};
const std::vector<const char*> kTransitiveS = {"sees", "likes", "finds", "has", "wants"};
const std::vector<const char*> kTransitiveP = {"see", "like", "find", "have", "want"};
const std::vector<const char*> kObjects = {"it", "them", "him", "her", "us", "me"};
const std::vector<const char*> kAdverbs = {"today", "again", "here", "now", "slowly", "too"};

// A group of words that share a slice of a state's probability equally and lead to the same state.
struct Group {
    std::vector<const char*> words;
    double share;
    int next;
};

GrammarState make_state(const std::string& name, const std::string& expect, const std::vector<Group>& groups) {
    double total = 0;
    for (const Group& g : groups) total += g.share;
    GrammarState state{name, expect, {}};
    for (const Group& g : groups)
        for (const char* word : g.words) {
            double p = g.share / total / (double)g.words.size();
            state.arcs.push_back({word, p, std::log(p), g.next});
        }
    // The parser relies on at most one arc per word: that is what makes the automaton deterministic.
    for (size_t i = 0; i < state.arcs.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (state.arcs[i].word == state.arcs[j].word)
                throw std::logic_error("grammar state " + name + " has the word '" + state.arcs[i].word + "' twice");
    return state;
}

// The seven states of one clause; in_if selects the copy inside an "if" clause.
void add_clause(std::vector<GrammarState>& states, bool in_if) {
    const int k = in_if ? kIfOffset : 0;  // our own states are k + S .. k + A
    const std::string p = in_if ? "I" : "";

    std::vector<Group> start = {{{"the", "my"}, 35, k + N},
                                {{"a"}, 15, k + NS},
                                {{"he", "she", "it"}, 15, k + VS},
                                {{"they", "we", "you"}, 15, k + VP}};
    if (!in_if) start.push_back({{"if"}, 20, kIfOffset + S});
    states[k + S] = make_state(p + "S", "the start of a clause: a determiner, a pronoun or 'if'", start);

    states[k + N] = make_state(p + "N", "a noun or an adjective",
                               {{kAdjectives, 25, k + N}, {kSingularNouns, 40, k + VS}, {kPluralNouns, 35, k + VP}});
    states[k + NS] = make_state(p + "NS", "a singular noun or an adjective",
                                {{kAdjectives, 25, k + NS}, {kSingularNouns, 75, k + VS}});
    states[k + VS] = make_state(p + "VS", "a verb agreeing with a singular subject",
                                {{kIntransitiveS, 50, k + A}, {kTransitiveS, 50, k + O}});
    states[k + VP] = make_state(p + "VP", "a verb agreeing with a plural subject",
                                {{kIntransitiveP, 50, k + A}, {kTransitiveP, 50, k + O}});
    states[k + O] = make_state(p + "O", "an object pronoun", {{kObjects, 100, k + A}});

    // "and" starts another clause of the same kind; the clause ends with "then" inside an "if", with
    // the end of the sentence "." outside one.
    std::vector<Group> end = {{kAdverbs, 30, k + A}, {{"and"}, 12, k + S}};
    if (in_if)
        end.push_back({{"then"}, 58, S});
    else
        end.push_back({{"."}, 58, S});
    states[k + A] = make_state(p + "A", in_if ? "an adverb, 'and' or 'then'" : "an adverb, 'and' or the end '.'", end);
}

std::vector<GrammarState> build_grammar() {
    std::vector<GrammarState> states(kNumStates);
    add_clause(states, false);
    add_clause(states, true);
    return states;
}

bool is_sentence_end(const GrammarArc& arc) { return arc.word == "."; }

// Bytes an arc adds to the text: the word and the space after it, or for "." just the "\n"
// (the "." takes the place of the space that would follow the last word).
double arc_bytes(const GrammarArc& arc) { return is_sentence_end(arc) ? 1.0 : (double)arc.word.size() + 1.0; }

// Draws one arc of `state` with probability arc.prob.
const GrammarArc& draw_arc(const GrammarState& state, ag::Rng& rng) {
    double u = rng.uniform();
    double cumulative = 0;
    for (const GrammarArc& arc : state.arcs) {
        cumulative += arc.prob;
        if (u < cumulative) return arc;
    }
    return state.arcs.back();  // u landed in the rounding gap just below 1
}

// Appends one sentence to corpus, from the start state to ".\n".
void generate_sentence(Corpus& corpus, ag::Rng& rng) {
    const std::vector<GrammarState>& states = grammar_states();
    int state = S;
    bool first_word = true;
    for (;;) {
        const GrammarArc& arc = draw_arc(states[state], rng);
        corpus.log_prob += arc.log_prob;
        if (is_sentence_end(arc)) {
            corpus.text += ".\n";
            break;
        }
        if (!first_word) corpus.text += ' ';
        corpus.text += arc.word;
        first_word = false;
        state = arc.next;
    }
    corpus.sentences++;
}

const GrammarArc* find_arc(const GrammarState& state, const std::string& word) {
    for (const GrammarArc& arc : state.arcs)
        if (arc.word == word) return &arc;
    return nullptr;
}

[[noreturn]] void parse_error(size_t sentence, size_t byte, const std::string& what) {
    throw Error("text is not in the built-in grammar: sentence " + std::to_string(sentence) + " (byte " +
                std::to_string(byte) + "): " + what);
}

}  // namespace

const std::vector<GrammarState>& grammar_states() {
    static const std::vector<GrammarState> states = build_grammar();
    return states;
}

double Corpus::optimum() const { return text.empty() ? 0.0 : -log_prob / (double)text.size(); }

Corpus generate_corpus(uint64_t seed, size_t min_bytes) {
    ag::Rng rng(seed);
    Corpus corpus;
    while (corpus.text.size() < min_bytes) generate_sentence(corpus, rng);
    return corpus;
}

double grammar_log_prob(const std::string& text) {
    const std::vector<GrammarState>& states = grammar_states();
    double log_prob = 0;
    size_t pos = 0, sentence = 0;
    while (pos < text.size()) {
        sentence++;
        size_t newline = text.find('\n', pos);
        if (newline == std::string::npos) parse_error(sentence, pos, "the text ends without the final \".\\n\"");
        if (newline == pos || text[newline - 1] != '.') parse_error(sentence, newline, "a line must end with '.'");
        size_t body_end = newline - 1;  // the '.'

        // Walk the words (separated by single spaces) through the automaton.
        int state = S;
        std::string previous = "(start of sentence)";
        while (pos <= body_end) {
            size_t space = text.find(' ', pos);
            size_t word_end = (space == std::string::npos || space > body_end) ? body_end : space;
            std::string word = text.substr(pos, word_end - pos);
            if (word.empty()) parse_error(sentence, pos, "an empty word (two spaces, or a space at a sentence's edge)");
            const GrammarArc* arc = find_arc(states[state], word);
            if (!arc)
                parse_error(sentence, pos,
                            "'" + word + "' after '" + previous + "'; expected " + states[state].expect);
            log_prob += arc->log_prob;
            state = arc->next;
            previous = word;
            pos = word_end + 1;  // past the space, or past the '.' for the last word
        }

        const GrammarArc* end = find_arc(states[state], ".");
        if (!end) parse_error(sentence, body_end, "the sentence ends after '" + previous + "'; expected " + states[state].expect);
        log_prob += end->log_prob;
        pos = newline + 1;
    }
    return log_prob;
}

GrammarRates grammar_rates() {
    // From each state s, the expected information H[s] (nats) and bytes L[s] still to come before the
    // sentence ends satisfy
    //     H[s] = sum over arcs a of s:  prob_a * (-log prob_a + H[next_a])     (0 after the ".")
    //     L[s] = sum over arcs a of s:  prob_a * (bytes_a + L[next_a])
    // Every loop of the automaton is left with probability >= 0.6 at each turn, so iterating these
    // equations from zero converges geometrically; 2000 rounds is far more than enough for doubles.
    const std::vector<GrammarState>& states = grammar_states();
    std::vector<double> H(states.size(), 0.0), L(states.size(), 0.0);
    for (int round = 0; round < 2000; ++round) {
        std::vector<double> H_new(states.size(), 0.0), L_new(states.size(), 0.0);
        for (size_t s = 0; s < states.size(); ++s)
            for (const GrammarArc& arc : states[s].arcs) {
                double h_after = is_sentence_end(arc) ? 0.0 : H[arc.next];
                double l_after = is_sentence_end(arc) ? 0.0 : L[arc.next];
                H_new[s] += arc.prob * (-arc.log_prob + h_after);
                L_new[s] += arc.prob * (arc_bytes(arc) + l_after);
            }
        H = H_new;
        L = L_new;
    }
    return {H[S], L[S], H[S] / L[S]};
}

}  // namespace train
