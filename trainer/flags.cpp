// flags.cpp: parsing GNU-style flags against a table, with one-line errors and a generated --help.

#include "flags.h"

#include <cstdint>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "error.h"

namespace train {

// ---- parsing one value (the end must be the text's own end: a NUL inside it is junk, not the end)

bool parse_int(const std::string& text, int& out) {
    if (text.empty() || std::isspace((unsigned char)text[0])) return false;
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (end != text.c_str() + text.size() || errno == ERANGE || v < INT_MIN || v > INT_MAX) return false;
    out = (int)v;
    return true;
}

bool parse_float(const std::string& text, double& out) {
    if (text.empty() || std::isspace((unsigned char)text[0])) return false;
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(v)) return false;
    out = v;
    return true;
}

namespace {

// The shortest decimal form that reads back as exactly v: 0.1 -> "0.1", not "0.10000000000000001".
std::string shortest(double v) {
    char buffer[40];
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buffer, sizeof buffer, "%.*g", precision, v);
        if (std::strtod(buffer, nullptr) == v) break;
    }
    return buffer;
}

const char* kind_name(FlagKind kind) {
    switch (kind) {
        case FlagKind::String: return "string";
        case FlagKind::Int: return "integer";
        case FlagKind::Float: return "number";
        case FlagKind::Switch: return "switch";
    }
    return "?";
}

std::string default_metavar(FlagKind kind) {
    if (kind == FlagKind::Int) return "N";
    if (kind == FlagKind::Float) return "X";
    return "TEXT";
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// An argument as a message shows it: a very long one cut to its first 60 characters, so that the
// error stays a readable line.
std::string shortened(const std::string& arg) {
    if (arg.size() <= 80) return arg;
    return arg.substr(0, 60) + "... (" + std::to_string(arg.size()) + " characters)";
}

}  // namespace

size_t edit_distance(const std::string& a, const std::string& b) {
    // d[i][j] = distance between the first i chars of a and the first j of b (Damerau's "optimal
    // string alignment": a swap of two neighbours, "stpes" -> "steps", counts as one edit).
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t substitute = d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, substitute});
            bool swapped = i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1];
            if (swapped) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

// ---- the table

Flags::Flags(std::vector<FlagSpec> specs) : specs_(std::move(specs)), values_(specs_.size()) {
    for (size_t i = 0; i < specs_.size(); ++i) {
        const FlagSpec& s = specs_[i];
        if (s.name.empty() || starts_with(s.name, "-") || s.name == "help" || starts_with(s.name, "no-"))
            throw std::logic_error("flag table: bad name '" + s.name + "'");
        if (s.short_name == 'h') throw std::logic_error("flag table: -h is reserved for --help");
        for (size_t j = 0; j < i; ++j) {
            if (specs_[j].name == s.name) throw std::logic_error("flag table: --" + s.name + " twice");
            if (s.short_name && specs_[j].short_name == s.short_name)
                throw std::logic_error(std::string("flag table: -") + s.short_name + " twice");
        }
        // The default goes through the same parser as a typed value, so a bad default fails here, at start.
        try {
            set((int)i, s.default_value, "--" + s.name);
        } catch (const Error& e) {
            throw std::logic_error(std::string("flag table: default: ") + e.what());
        }
        values_[i].given = false;
    }
}

int Flags::find_long(const std::string& name) const {
    for (size_t i = 0; i < specs_.size(); ++i)
        if (specs_[i].name == name) return (int)i;
    return -1;
}

int Flags::find_short(char c) const {
    for (size_t i = 0; i < specs_.size(); ++i)
        if (specs_[i].short_name == c) return (int)i;
    return -1;
}

// Stores text as flag `index`'s value after checking it fits the flag's kind. shown_as is how the
// user wrote the flag ("--steps" or "-s"), for the message.
void Flags::set(int index, const std::string& text, const std::string& shown_as) {
    const FlagSpec& spec = specs_[index];
    Value& v = values_[index];
    const std::string got = ", got '" + text + "'";
    switch (spec.kind) {
        case FlagKind::String:
            break;
        case FlagKind::Int:
            if (!parse_int(text, v.i)) {
                // Say which way it is wrong: too big, written as a float, or not a number at all.
                size_t digits_from = (!text.empty() && (text[0] == '+' || text[0] == '-')) ? 1 : 0;
                bool digits_only = text.size() > digits_from &&
                                   text.find_first_not_of("0123456789", digits_from) == std::string::npos;
                double as_float = 0;
                bool whole_float = parse_float(text, as_float) && std::floor(as_float) == as_float;
                if (digits_only)
                    throw Error(shown_as + " expects an integer between " + std::to_string(INT_MIN) + " and " +
                                std::to_string(INT_MAX) + got);
                if (whole_float) throw Error(shown_as + " expects an integer written with digits only" + got);
                throw Error(shown_as + " expects an integer" + got);
            }
            break;
        case FlagKind::Float:
            if (!parse_float(text, v.f)) {
                char* end = nullptr;
                std::strtod(text.c_str(), &end);
                bool number_but_infinite = !text.empty() && *end == '\0' && !std::isspace((unsigned char)text[0]);
                throw Error(shown_as + (number_but_infinite ? " expects a finite number" : " expects a number") + got);
            }
            break;
        case FlagKind::Switch:
            if (text != "true" && text != "false") throw Error(shown_as + " expects true or false" + got);
            v.b = text == "true";
            break;
    }
    v.text = text;
    v.given = true;
}

// ---- parsing the command line

void Flags::parse(int argc, const char* const* argv) {
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
    parse(args);
}

void Flags::parse(const std::vector<std::string>& args) {
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        // Takes the next argument as the value of `shown_as`, unless there is none or it is a flag.
        auto next_value = [&](const std::string& shown_as) {
            if (i + 1 >= args.size() || starts_with(args[i + 1], "--")) throw Error(shown_as + " needs a value");
            return args[++i];
        };

        if (arg == "--help" || arg == "-h") {
            help_requested_ = true;
            return;
        }
        if (arg == "--") {  // conventional end of flags; we take no positional arguments anyway
            if (i + 1 < args.size()) throw Error("unexpected argument '" + args[i + 1] + "' (this program takes only flags; see --help)");
            return;
        }

        if (starts_with(arg, "--")) {
            // --name, --name=value, --name value, --no-name
            std::string body = arg.substr(2);
            size_t eq = body.find('=');
            std::string name = body.substr(0, eq);
            bool has_value = eq != std::string::npos;
            std::string shown_as = "--" + name;

            if (name == "help") throw Error("--help takes no value");
            int index = find_long(name);
            if (index < 0 && starts_with(name, "no-")) {
                int positive = find_long(name.substr(3));
                if (positive >= 0 && specs_[positive].kind == FlagKind::Switch) {
                    if (has_value) throw Error(shown_as + " is a switch and takes no value");
                    set(positive, "false", shown_as);
                    continue;
                }
            }
            if (index < 0) throw Error("unknown flag " + shortened(shown_as) + suggestion(name));

            if (specs_[index].kind == FlagKind::Switch) {
                if (has_value) throw Error(shown_as + " is a switch and takes no value (use " + shown_as + " or --no-" + name + ")");
                set(index, "true", shown_as);
            } else {
                set(index, has_value ? body.substr(eq + 1) : next_value(shown_as), shown_as);
            }
            continue;
        }

        if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-') {
            // -x value, -xvalue
            std::string shown_as = arg.substr(0, 2);
            int index = find_short(arg[1]);
            if (index < 0) throw Error("unknown flag " + shown_as + " (see --help for the list)");
            shown_as += " (--" + specs_[index].name + ")";
            if (specs_[index].kind == FlagKind::Switch) {
                if (arg.size() > 2) throw Error(shown_as + " is a switch and takes no value");
                set(index, "true", shown_as);
            } else {
                set(index, arg.size() > 2 ? arg.substr(2) : next_value(shown_as), shown_as);
            }
            continue;
        }

        throw Error("unexpected argument '" + shortened(arg) + "' (flags start with --; see --help)");
    }
}

// " (did you mean --steps?)" for the nearest known name, or a pointer to --help when none is close.
std::string Flags::suggestion(const std::string& unknown) const {
    std::vector<std::string> candidates = {"help"};
    for (const FlagSpec& s : specs_) {
        candidates.push_back(s.name);
        if (s.kind == FlagKind::Switch) candidates.push_back("no-" + s.name);
    }
    // A name more than 3 times longer than every candidate differs from each in more than two thirds
    // of its characters, so none is close (below): not worth an edit distance, whose cost grows with
    // the length (a 131,000-character flag took 2 s and 30 MB per candidate).
    size_t longest = 0;
    for (const std::string& c : candidates) longest = std::max(longest, c.size());
    if (unknown.size() > 3 * longest) return " (see --help for the list)";
    std::string best;
    size_t best_distance = SIZE_MAX;
    for (const std::string& c : candidates) {
        size_t d = edit_distance(unknown, c);
        if (d < best_distance) {
            best = c;
            best_distance = d;
        }
    }
    // "Close" is up to two thirds of the name changed (at least 3 edits): typos and near-synonyms
    // such as --lr-max for --lr, but not an unrelated word.
    size_t allowed = std::max<size_t>(3, unknown.size() * 2 / 3);
    if (best_distance <= allowed) return " (did you mean --" + best + "?)";
    return " (see --help for the list)";
}

// ---- typed getters

const Flags::Value& Flags::value_of(const std::string& name, FlagKind kind) const {
    int index = find_long(name);
    if (index < 0) throw std::logic_error("no flag --" + name + " in the table");
    if (specs_[index].kind != kind)
        throw std::logic_error("--" + name + " is a " + kind_name(specs_[index].kind) + " flag, not a " + kind_name(kind));
    return values_[index];
}

const std::string& Flags::get_string(const std::string& name) const { return value_of(name, FlagKind::String).text; }
int Flags::get_int(const std::string& name) const { return value_of(name, FlagKind::Int).i; }
double Flags::get_float(const std::string& name) const { return value_of(name, FlagKind::Float).f; }
bool Flags::get_switch(const std::string& name) const { return value_of(name, FlagKind::Switch).b; }

bool Flags::given(const std::string& name) const {
    int index = find_long(name);
    if (index < 0) throw std::logic_error("no flag --" + name + " in the table");
    return values_[index].given;
}

std::string Flags::value_text(const std::string& name) const {
    int index = find_long(name);
    if (index < 0) throw std::logic_error("no flag --" + name + " in the table");
    const Value& v = values_[index];
    switch (specs_[index].kind) {
        case FlagKind::Int: return std::to_string(v.i);
        case FlagKind::Float: return shortest(v.f);
        case FlagKind::Switch: return v.b ? "true" : "false";
        case FlagKind::String: break;
    }
    return v.text;
}

// ---- --help

namespace {

// Appends text to out, wrapped at `width` columns, continuation lines indented by `indent` spaces.
// The first line continues wherever out's last line stands (`column`).
void append_wrapped(std::string& out, const std::string& text, size_t column, size_t indent, size_t width) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t word_end = text.find(' ', pos);
        if (word_end == std::string::npos) word_end = text.size();
        std::string word = text.substr(pos, word_end - pos);
        if (column > indent && column + 1 + word.size() > width) {
            out += "\n" + std::string(indent, ' ');
            column = indent;
        } else if (column > indent) {
            out += ' ';
            column++;
        }
        out += word;
        column += word.size();
        pos = word_end + 1;
    }
    out += '\n';
}

}  // namespace

std::string Flags::help(const std::string& usage) const {
    // The left column: "  -i, --input FILE" or "      --[no-]tie"
    std::vector<std::string> left(specs_.size());
    size_t left_width = 0;
    for (size_t i = 0; i < specs_.size(); ++i) {
        const FlagSpec& s = specs_[i];
        std::string alias = s.short_name ? std::string("-") + s.short_name + ", " : "    ";
        if (s.kind == FlagKind::Switch) {
            left[i] = "  " + alias + "--[no-]" + s.name;
        } else {
            left[i] = "  " + alias + "--" + s.name + " " + (s.metavar.empty() ? default_metavar(s.kind) : s.metavar);
        }
        left_width = std::max(left_width, left[i].size());
    }
    const size_t column = std::min<size_t>(left_width + 2, 34);  // where the help texts start
    const size_t width = 100;

    std::string out = usage + "\n\n  -h, --help" + std::string(column - 12, ' ') + "print this help and exit\n";

    std::vector<std::string> groups;
    for (const FlagSpec& s : specs_)
        if (std::find(groups.begin(), groups.end(), s.group) == groups.end()) groups.push_back(s.group);

    for (const std::string& group : groups) {
        out += "\n" + group + ":\n";
        for (size_t i = 0; i < specs_.size(); ++i) {
            const FlagSpec& s = specs_[i];
            if (s.group != group) continue;
            std::string shown_default = s.default_value.empty() ? "none" : s.default_value;
            if (s.kind == FlagKind::Switch) shown_default = s.default_value == "true" ? "on" : "off";

            out += left[i];
            size_t at = left[i].size();
            if (at + 2 > column) {  // too long for the column: the help goes on the next line
                out += "\n" + std::string(column, ' ');
                at = column;
            } else {
                out += std::string(column - at, ' ');
                at = column;
            }
            append_wrapped(out, s.help + " (default: " + shown_default + ")", at, column, width);
        }
    }
    return out;
}

}  // namespace train
