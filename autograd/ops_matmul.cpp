// ops_matmul.cpp: matmul and linear, the reference tier (tiers.h): the products as plain loops. Their
// tuned twins (fast/ops_matmul.cpp) run the same products on the packed gemm (fast/gemm.cpp).
//
// With inputs = Dtype::bf16 every operand value of a product is rounded to bf16 as it is read (a no-op
// for tensors that are bf16 already), and the sums stay fp32, as the bf16 dot-product instructions do.
#include <vector>

#include "bf16.h"
#include "op_helpers.h"
#include "tiers.h"

namespace ag {
namespace reference {

namespace {

// op(X) as a row-major (rows, cols) matrix: X itself, or its transpose when X is stored (cols, rows),
// each value rounded to bf16 when the product's inputs are bf16.
std::vector<real> as_matrix(const real* X, bool transposed, int64_t rows, int64_t cols, Dtype inputs) {
    std::vector<real> m(rows * cols);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const real v = transposed ? X[c * rows + r] : X[r * cols + c];
            m[r * cols + c] = inputs == Dtype::bf16 ? ag::round_bf16(v) : v;
        }
    return m;
}

// C (M, N) += op(A) (M, K) @ op(B) (K, N), C row-major; op(A) = A, or A^T with ta (A stored (K, M));
// op(B) likewise with tb. The one product the backward passes need in three orientations. The loop
// over j is innermost so that it runs along rows of C and op(B) (the compiler vectorises it); each
// C[i][j] still adds its K terms in order of p.
void product(Dtype inputs, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
             real* C) {
    const std::vector<real> a = as_matrix(A, ta, M, K, inputs), b = as_matrix(B, tb, K, N, inputs);
    for (int64_t i = 0; i < M; ++i)
        for (int64_t p = 0; p < K; ++p)
            for (int64_t j = 0; j < N; ++j) C[i * N + j] += a[i * K + p] * b[p * N + j];
}

}  // namespace

// a (..., M, K) @ b (..., K, N) -> (..., M, N): for every batch entry, C = A @ B,
//   C[i][j] = sum_p A[i][p] B[p][j]
Tensor matmul(const Tensor& a, const Tensor& b, Dtype inputs) {
    const MatmulShape s = matmul_shape(a, b);
    Tensor out = Tensor::zeros(s.out);
    for (int64_t e = 0; e < s.batches; ++e)
        product(inputs, false, false, s.M, s.N, s.K, a.data() + e * s.a_step, b.data() + e * s.b_step,
                out.data() + e * s.c_step);
    return record(out, "matmul", {a, b}, [a, b, s, inputs](const Tensor& out) {
        // dA[i][p] += sum_j dC[i][j] B[p][j]   (dA += dC @ B^T)
        // dB[p][j] += sum_i A[i][p] dC[i][j]   (dB += A^T @ dC)
        // A side shared by every batch entry (step 0) collects the terms of all of them.
        const real* dC = out.grad_buffer();
        for (int64_t e = 0; e < s.batches; ++e) {
            const real *A = a.data() + e * s.a_step, *B = b.data() + e * s.b_step, *dCe = dC + e * s.c_step;
            if (a.requires_grad()) product(inputs, false, true, s.M, s.K, s.N, dCe, B, a.grad_buffer() + e * s.a_step);
            if (b.requires_grad()) product(inputs, true, false, s.K, s.N, s.M, A, dCe, b.grad_buffer() + e * s.b_step);
        }
    });
}

// x (..., K) @ W^T + bias -> (..., N); W is (N, K): one row of weights per output feature.
//   y[r][n] = sum_k x[r][k] W[n][k] + bias[n]      (the bias added in fp32)
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& bias, Dtype inputs) {
    const LinearShape s = linear_shape(x, W, bias);
    Tensor out = Tensor::zeros(s.out);
    product(inputs, false, true, s.R, s.N, s.K, x.data(), W.data(), out.data());
    if (bias.defined())
        for (int64_t r = 0; r < s.R; ++r)
            for (int64_t n = 0; n < s.N; ++n) out.data()[r * s.N + n] += bias.data()[n];
    return record(out, "linear", {x, W, bias}, [x, W, bias, s, inputs](const Tensor& out) {
        // dx[r][k] += sum_n dy[r][n] W[n][k]   (dx += dy @ W)
        // dW[n][k] += sum_r dy[r][n] x[r][k]   (dW += dy^T @ x)
        // dbias[n] += sum_r dy[r][n]
        const real* dy = out.grad_buffer();
        if (x.requires_grad()) product(inputs, false, false, s.R, s.K, s.N, dy, W.data(), x.grad_buffer());
        if (W.requires_grad()) product(inputs, true, false, s.N, s.K, s.R, dy, x.data(), W.grad_buffer());
        if (bias.defined() && bias.requires_grad())
            for (int64_t r = 0; r < s.R; ++r)
                for (int64_t n = 0; n < s.N; ++n) bias.grad_buffer()[n] += dy[r * s.N + n];
    });
}

}  // namespace reference
}  // namespace ag
