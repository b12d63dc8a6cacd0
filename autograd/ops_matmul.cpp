// ops_matmul.cpp: matmul and linear, built on the gemm kernel.
//
// Transposes are never materialised here: gemm takes flags saying "read this operand transposed",
// which is all that the backward products dA = dC B^T and dB = A^T dC need.
#include <omp.h>

#include <stdexcept>

#include "kernels.h"
#include "ops.h"

namespace ag {

// Adding the bias (and summing its gradient) is a pass over y: shared between threads when y is big.
constexpr int64_t kBiasInParallel = 1 << 16;

// One gemm, in the operands' precision.
static void product(Dtype inputs, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
                    real* C, bool accumulate) {
    if (inputs == Dtype::bf16)
        gemm_bf16(ta, tb, M, N, K, A, B, C, accumulate);
    else
        gemm(ta, tb, M, N, K, A, B, C, accumulate);
}

static std::string fit_error(const char* op, const Tensor& a, const Tensor& b, const std::string& why) {
    return std::string(op) + ": shapes " + a.shape_str() + " and " + b.shape_str() + " do not fit (" + why + ")";
}

// a (..., M, K) @ b (..., K, N) -> (..., M, N)
Tensor matmul(const Tensor& a, const Tensor& b, Dtype inputs) {
    if (a.dim() < 2 || b.dim() < 2) throw std::invalid_argument(fit_error("matmul", a, b, "both need 2 or more dimensions"));
    int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
    if (b.size(-2) != K)
        throw std::invalid_argument(fit_error("matmul", a, b, "inner dimensions " + std::to_string(K) + " and " +
                                                                   std::to_string(b.size(-2)) + " differ"));
    Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
    if (!batch_a.empty() && !batch_b.empty() && batch_a != batch_b)
        throw std::invalid_argument(fit_error("matmul", a, b, "batch dimensions differ"));

    Shape out_shape = batch_a.empty() ? batch_b : batch_a;
    out_shape.push_back(M);
    out_shape.push_back(N);
    int64_t batches = numel_of(out_shape) / (M * N);
    if (batch_b.empty()) {  // b is shared by every batch entry: stack a's matrices into one tall one
        M *= batches;
        batches = 1;
    }
    int64_t a_step = batch_a.empty() ? 0 : M * K;  // elements between consecutive matrices of a
    int64_t b_step = batch_b.empty() ? 0 : K * N;
    int64_t c_step = M * N;

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

// x (..., K) @ W^T + bias -> (..., N); W is (N, K): one row of weights per output feature.
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& bias, Dtype inputs) {
    if (W.dim() != 2 || x.dim() < 1 || x.size(-1) != W.size(1))
        throw std::invalid_argument(fit_error("linear", x, W, "input features must equal the weight's (N, K) K"));
    int64_t K = W.size(1), N = W.size(0), R = x.numel() / K;  // R rows of input
    if (bias.defined() && (bias.dim() != 1 || bias.size(0) != N))
        throw std::invalid_argument(fit_error("linear", W, bias, "bias must be (N) for a weight (N, K)"));

    Shape out_shape = x.shape();
    out_shape.back() = N;
    Tensor out = Tensor::empty(out_shape);
    real* y = out.data();
    product(inputs, false, true, R, N, K, x.data(), W.data(), y, false);  // y (R, N) = x (R, K) @ W^T (K, N)
    if (bias.defined()) {
        const real* b = bias.data();
#pragma omp parallel for if (R * N >= kBiasInParallel) schedule(static)
        for (int64_t r = 0; r < R; ++r)
            for (int64_t n = 0; n < N; ++n) y[r * N + n] += b[n];
    }

    return record(out, "linear", {x, W, bias}, [=](const Tensor& out) {
        // y = x W^T + b  =>  dx += dy W,  dW += dy^T x,  db += sum over rows of dy
        // (A gradient buffer that holds nothing yet is written, not added to: see grad_to_write.)
        const real* dy = out.grad_buffer();
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
#pragma omp parallel if (R * N >= kBiasInParallel)
            {
                int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
                int64_t n0 = (N * t / nt) / 16 * 16, n1 = t == nt - 1 ? N : (N * (t + 1) / nt) / 16 * 16;
                for (int64_t r = 0; r < R; ++r)
                    for (int64_t n = n0; n < n1; ++n) db[n] += dy[r * N + n];
            }
        }
    });
}

}  // namespace ag
