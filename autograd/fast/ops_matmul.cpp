// fast/ops_matmul.cpp: the tuned tier (tiers.h) of matmul and linear, built on the packed gemm
// (gemm.cpp, gemm_bf16.cpp); the products' math is in ../ops_matmul.cpp.
//
// Transposes are never materialised here: gemm takes flags saying "read this operand transposed",
// which is all that the backward products dA = dC B^T and dB = A^T dC need.
#include <omp.h>

#include <algorithm>
#include <stdexcept>

#include "../bf16.h"
#include "../op_helpers.h"
#include "../tiers.h"
#include "kernels.h"

namespace ag {
namespace fast {

// One gemm, in the operands' precision, and what it does to C at the end (kernels.h).
static void product(Dtype inputs, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
                    real* C, bool accumulate, const Epilogue& then = {}) {
    if (inputs == Dtype::bf16)
        gemm_bf16(ta, tb, M, N, K, A, B, C, accumulate, then);
    else
        gemm(ta, tb, M, N, K, A, B, C, accumulate, then);
}

// a (..., M, K) @ b (..., K, N) -> (..., M, N)
Tensor matmul(const Tensor& a, const Tensor& b, Dtype inputs) {
    const MatmulShape shape = matmul_shape(a, b);
    const Shape out_shape = shape.out;
    const int64_t M = shape.M, K = shape.K, N = shape.N, batches = shape.batches;
    const int64_t a_step = shape.a_step, b_step = shape.b_step, c_step = shape.c_step;

    // Several matrices (attention's B*NH heads, say) are shared out between threads whole; each gemm then
    // runs on one thread. A single matrix is split by gemm itself.
    Tensor out = Tensor::empty(out_shape);
    const real *pa = a.data(), *pb = b.data();
    real* pc = out.data();
#pragma omp parallel for schedule(static) if (batches > 1)
    for (int64_t i = 0; i < batches; ++i)  // C_i = A_i @ B_i
        product(inputs, false, false, M, N, K, pa + i * a_step, pb + i * b_step, pc + i * c_step, false);

    return record(out, "matmul", {a, b}, [=](const Tensor& out) {
        // C = A @ B  =>  dA += dC @ B^T  (M x N times N x K),  dB += A^T @ dC  (K x M times M x N)
        // A shared operand (step 0) collects from every batch entry: that loop stays on one thread.
        const real* dC = out.grad_buffer();
        if (a.requires_grad()) {
            real* dA = a.grad_buffer();
#pragma omp parallel for schedule(static) if (batches > 1 && a_step != 0)
            for (int64_t i = 0; i < batches; ++i)
                product(inputs, false, true, M, K, N, dC + i * c_step, pb + i * b_step, dA + i * a_step, true);
        }
        if (b.requires_grad()) {
            real* dB = b.grad_buffer();
#pragma omp parallel for schedule(static) if (batches > 1 && b_step != 0)
            for (int64_t i = 0; i < batches; ++i)
                product(inputs, true, false, K, N, M, pa + i * a_step, dC + i * c_step, dB + i * b_step, true);
        }
    });
}

// The bias's gradient, db[n] += sum over rows r of dy[r][n] (each value rounded to bf16 first when
// `rounded`), for the `cols` columns from c: the sums stay in a small block of registers while the
// rows go past, rows in order, so each column adds in the same order whatever the block. (Row by row
// over all of a thread's columns, every sum would go to L1 and back once a row.) The rows are
// requested 16 ahead, as a pass down a column block jumps a whole row of dy at each step.
constexpr int64_t kSumColumns = 128;
static void column_sums(const real* dy, int64_t R, int64_t N, int64_t c, int64_t cols, bool rounded, real* db) {
    real sum[kSumColumns];
    for (int64_t n = 0; n < cols; ++n) sum[n] = db[n];
    for (int64_t r = 0; r < R; ++r) {
        const real* row = dy + r * N + c;
        for (int64_t n = 0; n < cols; n += 64 / (int64_t)sizeof(real))  // (past dy's end: harmless)
            __builtin_prefetch(row + 16 * N + n);
        if (rounded) {
#pragma omp simd
            for (int64_t n = 0; n < cols; ++n) sum[n] += ag::round_bf16(row[n]);
        } else {
#pragma omp simd
            for (int64_t n = 0; n < cols; ++n) sum[n] += row[n];
        }
    }
    for (int64_t n = 0; n < cols; ++n) db[n] = sum[n];
}

Tensor linear(const Tensor& x, const Tensor& W, const Tensor& bias, Dtype inputs) {
    return fast::linear(x, W, bias, inputs, Dtype::fp32);
}

// x (..., K) @ W^T + bias -> (..., N); W is (N, K): one row of weights per output feature. The bias
// is added, and y stored in bf16 rounded, by the product itself as it finishes each tile of y (its
// epilogue), not in a pass over y afterwards. Stored in bf16, the gradient reaching y is used rounded:
// the bf16 products round their operands anyway, and the bias's sum rounds each value it adds.
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& bias, Dtype inputs, Dtype stored) {
    const LinearShape shape = linear_shape(x, W, bias);
    const Shape out_shape = shape.out;
    const int64_t K = shape.K, N = shape.N, R = shape.R;  // R rows of input
    const bool to_bf16 = stored == Dtype::bf16;

    Tensor out = Tensor::empty(out_shape);
    // y (R, N) = x (R, K) @ W^T (K, N), then + bias, then rounded if y is stored in bf16
    const Epilogue then{bias.defined() ? bias.data() : nullptr, to_bf16};
    product(inputs, false, true, R, N, K, x.data(), W.data(), out.data(), false, then);

    return record(out, "linear", {x, W, bias}, [=](const Tensor& out) {
        // y = x W^T + b  =>  dx += dy W,  dW += dy^T x,  db += sum over rows of dy
        // (A gradient buffer that holds nothing yet is written, not added to: see grad_to_write.)
        real* dy = out.grad_buffer();
        if (to_bf16 && inputs != Dtype::bf16) round_bf16_inplace(dy, R * N);  // fp32 products: round first
        bool accumulate = true;
        if (x.requires_grad()) {
            real* dx = x.grad_to_write(accumulate);
            product(inputs, false, false, R, K, N, dy, W.data(), dx, accumulate);
        }
        if (W.requires_grad()) {
            real* dW = W.grad_to_write(accumulate);
            product(inputs, true, false, N, K, R, dy, x.data(), dW, accumulate);
        }
        if (bias.defined() && bias.requires_grad()) {  // each thread sums its own columns, rows in order
            real* db = bias.grad_buffer();
#pragma omp parallel if (worth_threads(R * N))
            {
                int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
                int64_t n0 = (N * t / nt) / 16 * 16, n1 = t == nt - 1 ? N : (N * (t + 1) / nt) / 16 * 16;
                for (int64_t c = n0; c < n1; c += kSumColumns)
                    column_sums(dy, R, N, c, std::min(kSumColumns, n1 - c), to_bf16, db + c);
            }
        }
    });
}

}  // namespace fast
}  // namespace ag
