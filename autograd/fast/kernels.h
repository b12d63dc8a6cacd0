// kernels.h: the number-crunching loops that the ops call, kept apart from the graph code.
//
// Matrix multiply comes twice: a reference kernel a student can read in ten lines, and an optimised one
// (cache-blocked, packed, OpenMP over tiles of the output) that the tests check against it; and the
// same again on bf16 operands (gemm_bf16, for the bf16 mixed precision).
#pragma once

#include <cstdint>

#include "../parallel.h"
#include "../tensor.h"

namespace ag {

// C (M x N) = op(A) @ op(B), or C += op(A) @ op(B) when accumulate is true.
// All three are row-major and contiguous:
//   op(A) is M x K: A is stored M x K, or K x M when transpose_a (then op(A) = A^T);
//   op(B) is K x N: B is stored K x N, or N x K when transpose_b (then op(B) = B^T).
// The transpose flags let backward form A^T @ dC and dC @ B^T without copying anything.
void gemm_reference(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                    const real* B, real* C, bool accumulate);

void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
          real* C, bool accumulate);

// What a product does to each value of C after its last sum, while the tile of C is still in the
// caches: C[i][j] += bias[j] (bias, when not null, holds N values), then C[i][j] = round_bf16(C[i][j])
// (round_bf16). The values are those of a pass over C after the product, without that pass over memory:
// the Linear layer's bias and its output's rounding in bf16 (fast/ops_matmul.cpp).
struct Epilogue {
    const real* bias = nullptr;
    bool round_bf16 = false;
};
void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
          real* C, bool accumulate, const Epilogue& then);

// Which micro-kernel gemm was built with, e.g. "avx512 12x32" (chosen at build time by the -m flags).
const char* gemm_kernel_name();

// C (+)= round_bf16(op(A)) @ round_bf16(op(B)): each operand element rounded to the nearest bf16 (a no-op
// for values that are bf16 already, which is how the model calls it), products exact (a bf16 x bf16
// product fits a float's 24-bit mantissa), sums in fp32. Same argument meanings as gemm. Where the
// build has AVX512_BF16 (float build), vdpbf16ps or AMX's tdpbf16ps does the products; both treat bf16
// subnormal inputs as 0.
void gemm_bf16(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
               real* C, bool accumulate);
void gemm_bf16(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
               real* C, bool accumulate, const Epilogue& then);
// The scalar model the tests compare against: the same rounding, products summed in double.
void gemm_bf16_reference(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                         const real* B, real* C, bool accumulate);
// The path gemm_bf16 takes on this build, for the trainer's start-of-run table and the bench:
// "AMX (tdpbf16ps) 32x32", "AVX512_BF16 (vdpbf16ps) 12x32", or "portable (...)" saying why.
const char* gemm_bf16_kernel_name();
// For tests: the portable path (gemm's packs rounded to bf16, gemm's micro-kernel), callable on any
// machine; gemm_bf16 takes the fast path instead when the build has one.
void gemm_bf16_portable(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                        const real* B, real* C, bool accumulate);
void gemm_bf16_portable(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                        const real* B, real* C, bool accumulate, const Epilogue& then);
#if defined(__AVX512BF16__) && defined(__AVX512BW__) && !defined(AUTOGRAD_DOUBLE)
#define AG_GEMM_BF16_DOT_PRODUCT 1
// For tests: the vdpbf16ps path, callable wherever the build has it (gemm_bf16 may prefer the portable
// one: gemm_bf16.cpp says on which CPUs).
void gemm_bf16_dot_product(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                           const real* B, real* C, bool accumulate);
void gemm_bf16_dot_product(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                           const real* B, real* C, bool accumulate, const Epilogue& then);
#endif
#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(AG_GEMM_BF16_DOT_PRODUCT)
#define AG_GEMM_BF16_AMX 1
// For tests and the bench: the AMX path, where the build has it; false (C untouched) if the operating
// system refuses this process the tile registers.
bool gemm_bf16_amx(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
                   real* C, bool accumulate);
bool gemm_bf16_amx(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
                   real* C, bool accumulate, const Epilogue& then);
// Configures the calling thread's tiles as the AMX path uses them (every tile 16 rows x 64 bytes), for
// code that runs its own tile instructions (the bench's peak); false if the OS refuses the tiles.
bool gemm_bf16_amx_tiles();
#endif

// GELU, tanh approximation, over n values: y = 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3),
// computed as y = x / (1 + e^(-2u)), the same function with one exponential, one division and no
// cancellation. The backward computes e^(-2u) again from x (a few vector instructions, cheaper than
// writing it to memory in forward and reading it back):
//   dx += dy * q (1 + w e q),  e = e^(-2u), q = 1 / (1 + e), w = 2 sqrt(2/pi) x (1 + 3 * 0.044715 x^2)
// In the float build the exponential is kernels.cpp's own, which vectorises (absolute error ~2e-7 in y
// and dx); in the double build it is std::exp, for the gradient checks. Below x = -9 both are returned
// as 0 (they are under 1e-26 there; computing them would only make slow denormal numbers).
// gelu_backward adds into dx, or with accumulate = false stores into it (a new gradient buffer, or dy
// itself: dx == dy computes in place).
// Past the caches (parallel.h), y and a stored dx are written with streaming stores (see below).
// For an output stored in bf16 (ops.h), to_bf16 rounds y as it is written, and dy_to_bf16 uses dy
// rounded (dy itself is left as it is).
void gelu_forward(const real* x, real* y, int64_t n, bool to_bf16 = false);
void gelu_backward(const real* x, const real* dy, real* dx, int64_t n, bool accumulate = true,
                   bool dy_to_bf16 = false);

// Softmax rows, as cross-entropy needs them (one row of n logits at a time; the caller shares rows
// between threads). In float, e^x comes from the same vectorisable exp as GELU's (relative error
// below 2e-7); in double from std::exp.
//   row_logsumexp:          log sum_j e^(x_j), computed from the row's maximum, the sum in double
//   softmax_gradient_row:   the same log-sum-exp (returned), and the row's gradient of cross-entropy
//                           for an upstream gradient of 1:  g_j = scale * (softmax(x)_j - [j == target])
//                           with one exponential per logit: e^(x_j - max) is stored and summed, then
//                           scaled. With `work` (n values, a thread's own) the row is made there and
//                           streamed out to g (for logits past the caches); without, made in g itself.
//   add_scaled_softmax_row: dx_j += scale * e^(x_j - lse), i.e. scale * softmax(x)_j given lse
//                           (with accumulate = false: dx_j = ..., into a new gradient buffer)
// For logits past the caches (GPT-2's are 51 MB), software prefetch keeps memory busy while the
// exponentials are computed: row_logsumexp and softmax_gradient_row fetch `next` (the next row, or
// null) during their second pass, and add_scaled_softmax_row with prefetch = true reads 2 KB ahead.
// Products that would be denormal (below 1.2e-38 in float) are 0 instead: arithmetic on denormal
// numbers takes the CPU's slow path.
real row_max(const real* x, int64_t n);  // max_j x_j, vectorised
real row_logsumexp(const real* x, int64_t n, const real* next = nullptr);
real softmax_gradient_row(const real* x, int64_t n, int64_t target, real scale, real* g, real* work = nullptr,
                          const real* next = nullptr);
void add_scaled_softmax_row(const real* x, real lse, real scale, real* dx, int64_t n, bool accumulate = true,
                            bool prefetch = false);

// dst = u * src, or dst += u * src with accumulate (dst may be src); products that would be denormal
// are 0. Threaded; past the caches a stored dst is streamed out.
void scale_into(const real* src, real u, real* dst, int64_t n, bool accumulate);


// Streaming stores, for outputs past the caches. A plain store to a line that is not in cache first
// reads the line from memory (read for ownership) and writes it back later: for an output, a read
// nobody needs, which costs a third of a read-one-write-one pass's traffic. A streaming (non-temporal)
// store skips that read and the caches (docs/performance.md has the measured gain). The next reader
// then finds the output in memory, not in a cache, so only tensors past the caches use them:
// layernorm's and GELU's outputs and new gradients, cross-entropy's gradient, same-shape binary ops'
// outputs and new gradients (the residual add), zeroed gradient buffers, and the bf16 weights
// AdamW rounds from its master copy.
// stream_copy writes n values computed into src (a row in L1) to dst; stream_fence orders the calling
// thread's streaming stores before its later writes: each thread calls it at the end of its share,
// before another thread may read the output.
void stream_copy(real* dst, const real* src, int64_t n);
void stream_fence();

// x[0..n) = 0, threaded (gradient buffers are zeroed each step). Zeroing is a pass over memory: with
// ordinary stores (memset) each line is first read into the cache (read for ownership), doubling the
// traffic; streaming stores skip that read and the cache, which suits a buffer too large to still be
// in a cache when it is next read. So buffers past the caches (parallel.h) are streamed, smaller ones
// memset.
void fill_zeros(real* x, int64_t n);

// The floating-point mode for training: results below float's smallest normal number (1.2e-38) become
// 0, and such inputs count as 0 (x86's flush-to-zero and denormals-are-zero; TensorFlow trains this
// way, PyTorch offers it as torch.set_flush_denormal). Arithmetic on denormal numbers takes a slow
// path: an AdamW pass over moments that have decayed that far (a parameter whose gradient stays 0 for
// a thousand steps, such as the untied embedding row of a token that stops appearing) ran many times
// slower (docs/performance.md). It applies to the calling thread and to threads it starts afterwards, so ./train calls it
// first thing, before OpenMP starts its threads. Where the build knows no such mode, it does nothing.
void flush_denormals_to_zero(bool on = true);

// Attention's softmax over a row of a score tile, in place: s_j = e^(s_j - shift) for j < n, and the
// sum of the new values (in 16 float lanes). Same exp as above.
real exp_shifted_row(real* s, int64_t n, real shift);

}  // namespace ag
