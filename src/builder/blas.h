// Dense linear algebra for GPTQ from OpenBLAS (Debian's libopenblas-dev): CBLAS for the
// products and LAPACK's Cholesky routines. Debian's OpenBLAS ships no lapacke.h, so the
// two LAPACK routines are declared here with their reference Fortran signatures
// (column-major, arguments by pointer).
#pragma once

#include <cblas.h>

extern "C" {
// Cholesky factor of a symmetric positive definite matrix: uplo 'L' -> A = L L^T.
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
// Inverse of a triangular matrix in place: uplo 'L' lower, diag 'N' non-unit diagonal.
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info);
}
