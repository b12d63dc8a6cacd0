// The GNU-style flag parser: every accepted form, every error message, and the --help text.
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "../../trainer/error.h"
#include "../../trainer/flags.h"

using namespace train;

namespace {

// A table shaped like the trainer's (a few flags from each group).
std::vector<FlagSpec> table() {
    return {
        {"data", "input", 'i', FlagKind::String, "", "a text file to train on; without it, the built-in grammar", "FILE"},
        {"data", "loader", 0, FlagKind::String, "random", "how batches are drawn: random or sequential", "KIND"},
        {"model", "n-layer", 0, FlagKind::Int, "4", "transformer blocks"},
        {"model", "tie", 0, FlagKind::Switch, "true", "tie the output layer to the token embedding"},
        {"optimisation", "steps", 's', FlagKind::Int, "2000", "optimisation steps"},
        {"optimisation", "lr", 0, FlagKind::Float, "1e-3", "peak learning rate"},
        {"schedule", "min-lr", 0, FlagKind::Float, "1e-4", "the learning rate at the end of the decay"},
        {"evaluation/sampling", "temperature", 0, FlagKind::Float, "1.0", "sampling temperature"},
        {"output", "sample-only", 0, FlagKind::Switch, "false", "generate from the checkpoint in --out without training"},
    };
}

Flags parsed(const std::vector<std::string>& args) {
    Flags flags(table());
    flags.parse(args);
    return flags;
}

std::string error_of(const std::vector<std::string>& args) {
    try {
        parsed(args);
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("flags: defaults, and every way of giving a value", "[train][flags]") {
    Flags d = parsed({});
    CHECK(d.get_string("input").empty());
    CHECK(d.get_int("steps") == 2000);
    CHECK(d.get_float("lr") == 1e-3);
    CHECK(d.get_switch("tie"));
    CHECK_FALSE(d.get_switch("sample-only"));
    CHECK_FALSE(d.given("steps"));
    CHECK_FALSE(d.help_requested());

    Flags f = parsed({"--steps", "10", "--lr=3e-4", "-i", "data.txt", "--no-tie", "--sample-only", "--temperature", "-0.5"});
    CHECK(f.get_int("steps") == 10);
    CHECK(f.get_float("lr") == 3e-4);
    CHECK(f.get_string("input") == "data.txt");
    CHECK_FALSE(f.get_switch("tie"));
    CHECK(f.get_switch("sample-only"));
    CHECK(f.get_float("temperature") == -0.5);  // a value may start with one '-'
    CHECK(f.given("steps"));
    CHECK(f.given("tie"));
    CHECK_FALSE(f.given("n-layer"));

    CHECK(parsed({"-s5"}).get_int("steps") == 5);
    CHECK(parsed({"-ifile.txt"}).get_string("input") == "file.txt");
    CHECK(parsed({"--input="}).get_string("input").empty());        // an explicitly empty string
    CHECK(parsed({"--input=a=b"}).get_string("input") == "a=b");    // only the first '=' splits
    CHECK(parsed({"--steps", "1", "--steps", "2"}).get_int("steps") == 2);  // the last one wins
    CHECK(parsed({"--no-tie", "--tie"}).get_switch("tie"));
    CHECK(parsed({"--steps", "+7"}).get_int("steps") == 7);
    CHECK(parsed({"--steps", "-2147483648"}).get_int("steps") == -2147483648);
    CHECK(parsed({"--lr", ".5"}).get_float("lr") == 0.5);
    CHECK(parsed({"--steps", "5", "--"}).get_int("steps") == 5);
}

TEST_CASE("flags: --help and -h stop parsing and ask for help", "[train][flags]") {
    CHECK(parsed({"--help"}).help_requested());
    CHECK(parsed({"-h"}).help_requested());
    CHECK(parsed({"--steps", "3", "--help", "--bogus"}).help_requested());  // what follows is not checked
    CHECK(error_of({"--help=yes"}) == "--help takes no value");
}

TEST_CASE("flags: unknown flags suggest the nearest name", "[train][flags]") {
    CHECK(error_of({"--stpes", "5"}) == "unknown flag --stpes (did you mean --steps?)");
    CHECK(error_of({"--nlayer", "5"}) == "unknown flag --nlayer (did you mean --n-layer?)");
    CHECK(error_of({"--lr-max", "5"}) == "unknown flag --lr-max (did you mean --lr?)");
    CHECK(error_of({"--no-tei"}) == "unknown flag --no-tei (did you mean --no-tie?)");
    CHECK(error_of({"--hlep"}) == "unknown flag --hlep (did you mean --help?)");
    CHECK(error_of({"--completely-unrelated-thing"}) == "unknown flag --completely-unrelated-thing (see --help for the list)");
    CHECK(error_of({"--no-steps"}) == "unknown flag --no-steps (did you mean --steps?)");  // --no- only for switches
    CHECK(error_of({"-x"}) == "unknown flag -x (see --help for the list)");

    // a 131,000-character name is cut short in the message and never compared (that took 2 s)
    const std::string huge(131000, 'a');
    CHECK(error_of({"--" + huge}) == "unknown flag --" + huge.substr(0, 58) +
                                         "... (131002 characters) (see --help for the list)");
    CHECK(error_of({huge}) == "unexpected argument '" + huge.substr(0, 60) +
                                  "... (131000 characters)' (flags start with --; see --help)");

    CHECK(edit_distance("steps", "steps") == 0);
    CHECK(edit_distance("stpes", "steps") == 1);  // a swap of neighbours is one edit
    CHECK(edit_distance("", "abc") == 3);
    CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("flags: missing and malformed values", "[train][flags]") {
    CHECK(error_of({"--lr"}) == "--lr needs a value");
    CHECK(error_of({"--lr", "--steps", "5"}) == "--lr needs a value");
    CHECK(error_of({"-s"}) == "-s (--steps) needs a value");

    CHECK(error_of({"--steps", "12x"}) == "--steps expects an integer, got '12x'");
    CHECK(error_of({"--steps", ""}) == "--steps expects an integer, got ''");
    CHECK(error_of({"--steps", " 12"}) == "--steps expects an integer, got ' 12'");
    CHECK(error_of({"--steps", "1.5"}) == "--steps expects an integer, got '1.5'");
    CHECK(error_of({"--steps", "1e4"}) == "--steps expects an integer written with digits only, got '1e4'");
    CHECK(error_of({"--steps", "99999999999"}) == "--steps expects an integer between -2147483648 and 2147483647, got '99999999999'");
    CHECK(error_of({"--steps=2147483648"}) == "--steps expects an integer between -2147483648 and 2147483647, got '2147483648'");
    CHECK(error_of({"-sx"}) == "-s (--steps) expects an integer, got 'x'");
    // the whole text is the number: a NUL inside (from a file; argv cannot hold one) is junk, not its end
    int i = 0;
    double d = 0;
    CHECK_FALSE(parse_int(std::string("12\0x", 4), i));
    CHECK_FALSE(parse_float(std::string("1\0", 2), d));
    CHECK(parse_int("-12", i));
    CHECK(i == -12);
    CHECK(parse_float("2.5e-1", d));
    CHECK(d == 0.25);

    CHECK(error_of({"--lr", "abc"}) == "--lr expects a number, got 'abc'");
    CHECK(error_of({"--lr", "1e-3x"}) == "--lr expects a number, got '1e-3x'");
    CHECK(error_of({"--lr", ""}) == "--lr expects a number, got ''");
    CHECK(error_of({"--lr", "inf"}) == "--lr expects a finite number, got 'inf'");
    CHECK(error_of({"--lr", "nan"}) == "--lr expects a finite number, got 'nan'");
    CHECK(error_of({"--lr", "1e999"}) == "--lr expects a finite number, got '1e999'");

    CHECK(error_of({"--tie=yes"}) == "--tie is a switch and takes no value (use --tie or --no-tie)");
    CHECK(error_of({"--no-tie=1"}) == "--no-tie is a switch and takes no value");
}

TEST_CASE("flags: positional arguments are refused", "[train][flags]") {
    CHECK(error_of({"data.txt"}) == "unexpected argument 'data.txt' (flags start with --; see --help)");
    CHECK(error_of({"--steps", "5", "extra"}) == "unexpected argument 'extra' (flags start with --; see --help)");
    CHECK(error_of({"-"}) == "unexpected argument '-' (flags start with --; see --help)");
    CHECK(error_of({"--", "x"}) == "unexpected argument 'x' (this program takes only flags; see --help)");
}

TEST_CASE("flags: value_text is canonical, for config tables and checkpoint comparisons", "[train][flags]") {
    Flags a = parsed({"--lr", "0.001", "--steps", "+10"});
    Flags b = parsed({"--lr", "1e-3", "--steps", "10"});
    CHECK(a.value_text("lr") == "0.001");
    CHECK(a.value_text("lr") == b.value_text("lr"));
    CHECK(a.value_text("steps") == "10");
    CHECK(parsed({"--lr", "0.1"}).value_text("lr") == "0.1");
    CHECK(a.value_text("tie") == "true");
    CHECK(parsed({"--no-tie"}).value_text("tie") == "false");
    CHECK(parsed({"-i", "x y.txt"}).value_text("input") == "x y.txt");
}

TEST_CASE("flags: the help lists every flag with its default, under its group", "[train][flags]") {
    Flags flags(table());
    std::string help = flags.help("usage: train [flags]");
    INFO(help);
    CHECK(help.find("usage: train [flags]\n") == 0);
    CHECK(help.find("-h, --help") != std::string::npos);
    for (const FlagSpec& s : table()) {
        CHECK(help.find("--" + std::string(s.kind == FlagKind::Switch ? "[no-]" : "") + s.name) != std::string::npos);
    }
    CHECK(help.find("  -i, --input FILE") != std::string::npos);
    CHECK(help.find("--steps N") != std::string::npos);
    CHECK(help.find("--lr X") != std::string::npos);
    CHECK(help.find("(default: 2000)") != std::string::npos);
    CHECK(help.find("(default: 1e-3)") != std::string::npos);
    CHECK(help.find("tie the output layer to the token embedding (default: on)") != std::string::npos);
    CHECK(help.find("(default: off)") != std::string::npos);
    CHECK(help.find("the built-in grammar (default: none)") != std::string::npos);

    // groups in table order, each flag after its heading
    size_t data = help.find("\ndata:\n"), model = help.find("\nmodel:\n"), optim = help.find("\noptimisation:\n");
    size_t schedule = help.find("\nschedule:\n"), eval = help.find("\nevaluation/sampling:\n"), out = help.find("\noutput:\n");
    CHECK(data < model);
    CHECK(model < optim);
    CHECK(optim < schedule);
    CHECK(schedule < eval);
    CHECK(eval < out);
    CHECK(out != std::string::npos);
    CHECK(help.find("--n-layer") > model);
    CHECK(help.find("--n-layer") < optim);

    // no line wider than 100 columns
    size_t pos = 0;
    while (pos < help.size()) {
        size_t end = help.find('\n', pos);
        CHECK(end - pos <= 100);
        pos = end + 1;
    }
}

TEST_CASE("flags: a wrong table or a wrong getter is a programming error", "[train][flags]") {
    using T = std::vector<FlagSpec>;
    CHECK_THROWS_AS(Flags(T{{"g", "steps", 0, FlagKind::Int, "x", "bad default"}}), std::logic_error);
    CHECK_THROWS_AS(Flags(T{{"g", "a", 0, FlagKind::Int, "1", ""}, {"g", "a", 0, FlagKind::Int, "1", ""}}), std::logic_error);
    CHECK_THROWS_AS(Flags(T{{"g", "a", 'x', FlagKind::Int, "1", ""}, {"g", "b", 'x', FlagKind::Int, "1", ""}}), std::logic_error);
    CHECK_THROWS_AS(Flags(T{{"g", "no-thing", 0, FlagKind::Switch, "true", ""}}), std::logic_error);
    CHECK_THROWS_AS(Flags(T{{"g", "a", 'h', FlagKind::Switch, "true", ""}}), std::logic_error);
    Flags flags(table());
    CHECK_THROWS_AS(flags.get_int("lr"), std::logic_error);
    CHECK_THROWS_AS(flags.get_int("nope"), std::logic_error);
    CHECK_THROWS_AS(flags.given("nope"), std::logic_error);
}
