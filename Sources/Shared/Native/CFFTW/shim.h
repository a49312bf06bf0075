#include <fftw3.h>
// fftwf_version is an array of unknown size, which Swift cannot import.
static inline const char *ser_fftwf_version(void) { return fftwf_version; }
