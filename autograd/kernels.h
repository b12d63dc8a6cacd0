// kernels.h: the number-crunching loops that the ops call, kept apart from the graph code.
//
// Matrix multiply comes twice: a reference kernel a student can read in ten lines, and an optimised one
// (cache-blocked, packed, OpenMP over tiles of the output) that the tests check against it.
#pragma once

#include <cstdint>

#include "tensor.h"

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

}  // namespace ag
