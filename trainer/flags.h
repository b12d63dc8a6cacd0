// flags.h: GNU-style command-line flags from a table.
//
// The program lists its flags once, as a table of FlagSpec; from it come the parser, the typed
// getters and the --help text, so they cannot drift apart. Accepted forms:
//     --steps 100   --steps=100   -s 100   -s100    values
//     --tie   --no-tie                              switches (every switch also has its --no- form)
//     -h   --help                                   help_requested() becomes true; parsing stops there
// Later occurrences win (`--lr 1 --lr 2` gives 2). A value may start with '-' (`--temperature -1`),
// but not with "--": `--lr --steps 5` is a missing value, not the value "--steps".
//
// Every mistake throws train::Error with one line, for example
//     unknown flag --stpes (did you mean --steps?)
//     --lr needs a value
//     --steps expects an integer, got '12x'
//     unexpected argument 'data.txt' (flags start with --; see --help)
//
//   const std::vector<FlagSpec> table = {
//       {"data", "input", 'i', FlagKind::String, "", "a text file to train on", "FILE"},
//       {"optimisation", "steps", 0, FlagKind::Int, "2000", "optimisation steps"},
//       {"model", "tie", 0, FlagKind::Switch, "true", "tie the output layer to the token embedding"},
//   };
//   Flags flags(table);
//   flags.parse(argc, argv);
//   if (flags.help_requested()) { std::cout << flags.help("usage: train [flags]"); return 0; }
//   int steps = flags.get_int("steps");
#pragma once

#include <string>
#include <vector>

namespace train {

enum class FlagKind { String, Int, Float, Switch };

struct FlagSpec {
    std::string group;          // the heading it is listed under in --help: "data", "model", ...
    std::string name;           // the long name without dashes: "batch-size"
    char short_name;            // a one-letter alias ('b' for -b), or 0 for none
    FlagKind kind;
    std::string default_value;  // written as on the command line: "64", "3e-4", "" (none); switches "true"/"false"
    std::string help;           // one sentence; --help appends "(default: ...)"
    std::string metavar = "";   // the value's placeholder in --help ("FILE"); by default N, X or TEXT by kind
};

class Flags {
public:
    // Checks the table itself (unique names and aliases, defaults that parse); a bad table is a
    // programming error and throws std::logic_error.
    explicit Flags(std::vector<FlagSpec> specs);

    void parse(int argc, const char* const* argv);       // argv[0], the program name, is skipped
    void parse(const std::vector<std::string>& args);    // the arguments after the program name

    bool help_requested() const { return help_requested_; }

    // The full help: the usage text, then every flag with its default, grouped under headings in the
    // order the groups first appear in the table.
    std::string help(const std::string& usage) const;

    // Typed values (as given, else the default). Asking for an unknown name or the wrong kind is a
    // programming error: std::logic_error.
    const std::string& get_string(const std::string& name) const;
    int get_int(const std::string& name) const;
    double get_float(const std::string& name) const;
    bool get_switch(const std::string& name) const;

    // Whether the flag was on the command line (even if with its default value).
    bool given(const std::string& name) const;
    // The value as text in a canonical form, for a config table or for comparing with the flags stored
    // in a checkpoint: numbers in their shortest exact form ("1e-3" and "0.001" both give "0.001"),
    // switches "true" or "false", strings as they are.
    std::string value_text(const std::string& name) const;

    const std::vector<FlagSpec>& specs() const { return specs_; }

private:
    struct Value {
        std::string text;
        int i = 0;
        double f = 0;
        bool b = false;
        bool given = false;
    };

    int find_long(const std::string& name) const;
    int find_short(char c) const;
    const Value& value_of(const std::string& name, FlagKind kind) const;
    void set(int index, const std::string& text, const std::string& shown_as);
    std::string suggestion(const std::string& unknown) const;

    std::vector<FlagSpec> specs_;
    std::vector<Value> values_;
    bool help_requested_ = false;
};

// A whole string as a base-10 int (no blanks, no trailing junk, within int's range), or as a finite
// double in strtod's syntax ("3e-4", ".5"); false if it is not one. The parsers of flag values, also
// used for what the trainer reads back as text (a checkpoint's settings, log.csv).
bool parse_int(const std::string& text, int& out);
bool parse_float(const std::string& text, double& out);

// Edit distance (insertions, deletions, substitutions, and swaps of neighbours each count 1), used
// for "did you mean". Exposed for the tests.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace train
