// OpenBLAS: CBLAS for the GEMMs, its run-time kernel/thread controls, and the
// Fortran LAPACK symbols it carries (Debian's libopenblas has LAPACK built in;
// LAPACKE is a separate package, so the few routines used are declared here).
#ifndef SER_CBLAS_SHIM_H
#define SER_CBLAS_SHIM_H
#include <cblas.h>

// LAPACK (column-major, Fortran calling convention).
void sposv_(const char *uplo, const int *n, const int *nrhs, float *a, const int *lda,
            float *b, const int *ldb, int *info);
void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda,
            double *b, const int *ldb, int *info);
void dgels_(const char *trans, const int *m, const int *n, const int *nrhs, double *a,
            const int *lda, double *b, const int *ldb, double *work, const int *lwork, int *info);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
             double *w, double *work, const int *lwork, int *iwork, const int *liwork, int *info);
#endif
