import Shared

// OpenBLAS chooses its kernel when it loads; switching to the fastest one for this CPU means
// re-executing before anything else runs (see BLASKernel).
BLASKernel.ensureFastest()
SER.main()
