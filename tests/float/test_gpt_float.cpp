// The GPT in the float build: the GPT-2 124M preset and a forward/backward that runs end to end.
#include <catch2/catch.hpp>
#include <cmath>

#include "../../nn/gpt.h"

using namespace nn;

TEST_CASE("the GPT-2 124M preset has GPT-2 small's 124,439,808 parameters", "[nn][gpt2]") {
    GPT model(GPTConfig::gpt2(), 1);
    CHECK(model.num_parameters() == 124439808);
    CHECK(model.parameters().size() == 2 + 12 * 12 + 2);  // wte, wpe, 12 per block, ln_f
    GPTConfig untied = GPTConfig::gpt2();
    untied.tie_weights = false;
    untied.n_layer = 1;  // the count difference does not need the whole model
    GPTConfig tied1 = GPTConfig::gpt2();
    tied1.n_layer = 1;
    CHECK(GPT(untied, 1).num_parameters() - GPT(tied1, 1).num_parameters() == 50257LL * 768);
}

TEST_CASE("parameter_count() is the number of parameters the GPT has, for every switch", "[nn][gpt]") {
    for (PosScheme pos : {PosScheme::learned, PosScheme::relative, PosScheme::rope, PosScheme::none})
        for (NormPlacement norm : {NormPlacement::post, NormPlacement::pre, NormPlacement::sandwich})
            for (int tie_bias = 0; tie_bias < 4; ++tie_bias) {
                GPTConfig c;
                c.vocab_size = 50, c.padded_vocab_size = 64, c.max_seq_len = 12, c.n_layer = 2, c.n_head = 2;
                c.n_embd = 8, c.rel_clip = 3, c.pos = pos, c.norm = norm;
                c.tie_weights = tie_bias & 1, c.bias = tie_bias & 2;
                INFO(to_string(pos) << " " << to_string(norm) << " tie " << c.tie_weights << " bias " << c.bias);
                CHECK(c.parameter_count() == (double)GPT(c, 1).num_parameters());
            }
    CHECK(GPTConfig::gpt2().parameter_count() == 124439808);
    GPTConfig huge;  // what a corrupt checkpoint can claim: counted, not built
    huge.n_embd = 1 << 20, huge.n_head = 1;
    CHECK(huge.parameter_count() > 5e13);
}

TEST_CASE("validate() refuses sizes whose derived sizes would overflow an int", "[nn][gpt]") {
    GPTConfig c;
    c.pos = PosScheme::relative;
    c.rel_clip = 2147483647;  // 2k+1 rows
    CHECK_THROWS_WITH(c.validate(), "the relative scheme needs a clip distance k from 1 to 1073741823 (its tables' "
                                    "2k+1 rows are indexed by int), got 2147483647");
    c.rel_clip = 1073741823;
    CHECK_NOTHROW(c.validate());
    GPTConfig wide;
    wide.n_embd = 536870912, wide.n_head = 1;  // 4C, the MLP's width
    CHECK_THROWS_WITH(wide.validate(), "n_embd 536870912 is too large (the MLP's 4C must fit an int)");
    wide.n_embd = 536870911;
    CHECK_NOTHROW(wide.validate());
}

TEST_CASE("a small float GPT starts near uniform loss and learns a repeated batch", "[nn][gpt]") {
    GPTConfig c;
    c.vocab_size = 32;
    c.max_seq_len = 16;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 32;
    GPT model(c, 3);
    std::vector<int> ids(2 * 16), targets(2 * 16);
    for (int i = 0; i < 32; ++i) ids[i] = (i * 7) % 32, targets[i] = (i * 7 + 7) % 32;
    float first = model.forward(ids, 2, 16, targets).loss.item();
    CHECK(first == Approx(std::log(32.0)).epsilon(0.05));  // small init: logits near 0
    float loss = first;
    for (int step = 0; step < 30; ++step) {  // plain SGD, enough to see learning
        model.zero_grad();
        ag::Tensor l = model.forward(ids, 2, 16, targets).loss;
        loss = l.item();
        l.backward();
        for (auto& p : model.parameters())
            for (int64_t i = 0; i < p.second.numel(); ++i) p.second.data()[i] -= 0.5f * p.second.grad().data()[i];
    }
    CHECK(loss < 0.5f * first);
}
