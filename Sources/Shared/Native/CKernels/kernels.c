// The C kernels of ckernels.h for float and double: each template (.inc) is instantiated once
// per element type, T being the type and S its name suffix.
#include "ckernels.h"

#include <math.h>

#define T float
#define S f32
#define SQRT sqrtf
#include "winograd4.inc"
#include "direct.inc"
#include "batchnorm.inc"
#include "adam.inc"
#undef T
#undef S
#undef SQRT

#define T double
#define S f64
#define SQRT sqrt
#include "winograd4.inc"
#include "direct.inc"
#include "batchnorm.inc"
#include "adam.inc"
#undef T
#undef S
#undef SQRT
