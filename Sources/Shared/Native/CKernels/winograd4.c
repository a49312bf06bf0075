// Winograd F(4×4, 3×3) transforms; see ckernels.h. The template is winograd4.inc,
// instantiated once per element type.
#include "ckernels.h"

#define T float
#define S f32
#include "winograd4.inc"
#undef T
#undef S

#define T double
#define S f64
#include "winograd4.inc"
#undef T
#undef S
