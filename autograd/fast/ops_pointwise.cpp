// fast/ops_pointwise.cpp: the tuned tier (tiers.h) of the binary elementwise ops and GELU: threads over
// big arrays, streaming stores past the caches, gradients written instead of added where a buffer holds
// nothing yet, the residual add's gradient passed on in place; GELU in vector registers (kernels.cpp).
// Their reference versions, and the other elementwise ops, are in ../ops_pointwise.cpp.
#include <algorithm>
#include <cmath>

#include "../bf16.h"
#include "../op_helpers.h"
#include "../tiers.h"
#include "kernels.h"

namespace ag {
namespace fast {

namespace {

// Calls f(i, ia, ib) for every output index i, with the indices ia into a and ib into b it combines.
// With `parallel`, different i may run on different threads at once: f may write at i, or at the
// index of a full operand, but must not accumulate into the repeating (smaller) one.
template <class F>
void for_each_pair(const Broadcast& bc, F f, bool parallel) {
    parallel = parallel && worth_threads(bc.blocks * bc.period);
    if (bc.blocks == 1) {  // same shapes (or a broadcast of one block): share out the elements
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t j = 0; j < bc.period; ++j) f(j, j, j);
        return;
    }
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t blk = 0; blk < bc.blocks; ++blk) {
        int64_t base = blk * bc.period;
        int64_t a0 = bc.a_full ? base : 0, b0 = bc.b_full ? base : 0;
        for (int64_t j = 0; j < bc.period; ++j) f(base + j, a0 + j, b0 + j);
    }
}

// out[i] = value(i, ia, ib) for every output index i, into a buffer nothing has been read from: the
// output, or a full operand's new gradient (a full operand's index is the output's). Same shapes past
// the caches (parallel.h) are computed in pieces in L1 and streamed out (stream_copy, kernels.h), so
// each line of out is written without being read first.
template <class V>
void store_each(const Broadcast& bc, real* out, V value) {
    const int64_t n = bc.blocks * bc.period;
    if (bc.blocks != 1 || !past_caches(n * (int64_t)sizeof(real))) {
        for_each_pair(bc, [&](int64_t i, int64_t ia, int64_t ib) { out[i] = value(i, ia, ib); }, true);
        return;
    }
    constexpr int64_t kPiece = 256;
#pragma omp parallel
    {
        alignas(64) real piece[kPiece];
#pragma omp for schedule(static) nowait
        for (int64_t i0 = 0; i0 < n; i0 += kPiece) {
            const int64_t i1 = std::min(n, i0 + kPiece);
            for (int64_t i = i0; i < i1; ++i) piece[i - i0] = value(i, i, i);
            stream_copy(out + i0, piece, i1 - i0);
        }
        stream_fence();  // before another thread reads out
    }
}

// The gradient buffer an operand's share goes into: a full operand's is written, not added to, when it
// holds nothing yet (accumulate = false); a repeating operand sums over its repeats, so from zeros.
real* operand_grad(const Tensor& t, bool full, bool& accumulate) {
    accumulate = true;
    return full ? t.grad_to_write(accumulate) : t.grad_buffer();
}

// The skeleton of every binary op: out[i] = forward(a[ia], b[ib]); in backward,
// da[ia] += dy[i] * d_da(a[ia], b[ib]) and db[ib] += dy[i] * d_db(a[ia], b[ib]).
// da_is_dy: d_da is 1 (add, sub), so a full a with no gradient yet takes dy's buffer as it is (the
// residual stream's add: its backward then writes only b's share).
// to_bf16: the output is stored in bf16 (ops.h): `forward` rounds it, and dy is rounded in place before
// it is used, in the pass that writes a new db where there is one (the residual add's), else in a pass
// of its own.
template <class F, class DA, class DB>
Tensor binary(const char* name, const Tensor& a, const Tensor& b, F forward, DA d_da, DB d_db,
              bool da_is_dy = false, bool to_bf16 = false) {
    Broadcast bc = broadcast(name, a, b);
    Tensor out = Tensor::empty(bc.shape);
    const real *pa = a.data(), *pb = b.data();
    real* y = out.data();
    store_each(bc, y, [&](int64_t, int64_t ia, int64_t ib) { return forward(pa[ia], pb[ib]); });
    return record(out, name, {a, b}, [a, b, bc, d_da, d_db, da_is_dy, to_bf16](const Tensor& out) {
        const real *pa = a.data(), *pb = b.data();
        real* dy = out.grad_buffer();
        bool dy_ready = !to_bf16;  // false until dy is rounded
        bool accumulate = true;
        if (b.requires_grad()) {  // b first: a may then take dy's buffer
            real* db = operand_grad(b, bc.b_full, accumulate);
            if (!dy_ready && accumulate) round_bf16_inplace(dy, out.numel()), dy_ready = true;
            if (accumulate)
                for_each_pair(bc, [&](int64_t i, int64_t ia, int64_t ib) { db[ib] += dy[i] * d_db(pa[ia], pb[ib]); },
                              bc.b_full);  // a repeating operand sums over the repeats: one thread
            else if (!dy_ready)  // each i is one thread's: dy[i] is rounded where it is read
                store_each(bc, db, [&](int64_t i, int64_t ia, int64_t ib) {
                    const real d = dy[i] = ag::round_bf16(dy[i]);
                    return d * d_db(pa[ia], pb[ib]);
                });
            else
                store_each(bc, db, [&](int64_t i, int64_t ia, int64_t ib) { return dy[i] * d_db(pa[ia], pb[ib]); });
            dy_ready = true;
        }
        if (!dy_ready) round_bf16_inplace(dy, out.numel());
        if (a.requires_grad()) {
            if (da_is_dy && bc.a_full && a.adopt_grad_of(out)) return;  // da = dy: nothing to compute
            real* da = operand_grad(a, bc.a_full, accumulate);
            if (accumulate)
                for_each_pair(bc, [&](int64_t i, int64_t ia, int64_t ib) { da[ia] += dy[i] * d_da(pa[ia], pb[ib]); },
                              bc.a_full);
            else
                store_each(bc, da, [&](int64_t i, int64_t ia, int64_t ib) { return dy[i] * d_da(pa[ia], pb[ib]); });
        }
    });
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Binary ops: forward, d/da, d/db, as in the reference.

// y = a + b;  dy/da = 1, dy/db = 1
Tensor add(const Tensor& a, const Tensor& b) { return fast::add(a, b, Dtype::fp32); }

Tensor add(const Tensor& a, const Tensor& b, Dtype stored) {
    auto one = [](real, real) { return real(1); };
    if (stored == Dtype::bf16)
        return binary("add", a, b, [](real x, real y) { return ag::round_bf16(x + y); }, one, one, true, true);
    return binary("add", a, b, [](real x, real y) { return x + y; }, one, one, true);
}

// y = a - b;  dy/da = 1, dy/db = -1
Tensor sub(const Tensor& a, const Tensor& b) {
    return binary("sub", a, b, [](real x, real y) { return x - y; },
                  [](real, real) { return real(1); }, [](real, real) { return real(-1); }, true);
}

// y = a * b;  dy/da = b, dy/db = a
Tensor mul(const Tensor& a, const Tensor& b) {
    return binary("mul", a, b, [](real x, real y) { return x * y; },
                  [](real, real y) { return y; }, [](real x, real) { return x; });
}

// y = a / b;  dy/da = 1/b, dy/db = -a/b^2
Tensor div(const Tensor& a, const Tensor& b) {
    return binary("div", a, b, [](real x, real y) { return x / y; },
                  [](real, real y) { return 1 / y; }, [](real x, real y) { return -x / (y * y); });
}

// GELU (the reference's comment has the math): kernels.cpp computes the same function as x sigma(2u)
// (0.5 (1 + tanh u) = sigma(2u)) in vector registers, since GELU runs on the 4C-wide MLP activations, the
// largest tensors of a step. Backward needs only x: it recomputes e^(-2u). Stored in bf16, y is rounded
// as it is written and dy as it is read.
Tensor gelu(const Tensor& x) { return fast::gelu(x, Dtype::fp32); }

Tensor gelu(const Tensor& x, Dtype stored) {
    const bool to_bf16 = stored == Dtype::bf16;
    Tensor out = Tensor::empty(x.shape());
    gelu_forward(x.data(), out.data(), x.numel(), to_bf16);
    return record(out, "gelu", {x}, [x, to_bf16](const Tensor& out) {
        const real* dy = out.grad_buffer();
        if (real* dx = x.adopt_grad_of(out)) {  // in place: dx overwrites dy (tensor.h)
            gelu_backward(x.data(), dy, dx, x.numel(), false, to_bf16);
            return;
        }
        bool accumulate = true;
        real* dx = x.grad_to_write(accumulate);  // stored, not added, into a buffer with nothing in it yet
        gelu_backward(x.data(), dy, dx, x.numel(), accumulate, to_bf16);
    });
}

}  // namespace fast
}  // namespace ag
