// The C kernels of ckernels.h for float and double: each template (.inc) is instantiated once
// per element type, T being the type and S its name suffix.
#include "ckernels.h"

#define T float
#define S f32
#include "winograd4.inc"
#include "direct.inc"
#include "batchnorm.inc"
#undef T
#undef S

#define T double
#define S f64
#include "winograd4.inc"
#include "direct.inc"
#include "batchnorm.inc"
#undef T
#undef S
