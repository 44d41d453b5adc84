/* Elementwise kernels: unary activations, Clip, broadcasting arithmetic/comparison/logic, the
 * variadic Sum/Mean/Max/Min, and Where. float32 runs vectorised loops; other dtypes a scalar path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kutil.h"
#include "util/mem.h"

enum elt_op {
  OP_RELU, OP_LEAKY, OP_SIGMOID, OP_HSIGMOID, OP_HSWISH, OP_TANH, OP_ERF, OP_EXP, OP_LOG, OP_SQRT, OP_NEG,
  OP_ABS, OP_RECIP, OP_FLOOR, OP_CEIL, OP_ROUND, OP_ELU, OP_SOFTPLUS, OP_GELU, OP_GELU_TANH, OP_SIGN, OP_NOT,
  OP_CLIP, OP_COPY, OP_SQUARE, OP_CUBE,
  /* binary */
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW, OP_MAX, OP_MIN, OP_MOD, OP_FMOD, OP_EQ, OP_LT, OP_GT, OP_LE, OP_GE,
  OP_AND, OP_OR, OP_XOR,
  OP_WHERE,
};

enum elt_kind { K_UNARY, K_BINARY, K_VARIADIC, K_WHERE };

typedef struct op_row {
  const char *name;
  int op, kind;
} op_row;

static const op_row op_rows[] = {
    {"Relu", OP_RELU, K_UNARY}, {"LeakyRelu", OP_LEAKY, K_UNARY}, {"Sigmoid", OP_SIGMOID, K_UNARY},
    {"HardSigmoid", OP_HSIGMOID, K_UNARY}, {"HardSwish", OP_HSWISH, K_UNARY}, {"Tanh", OP_TANH, K_UNARY},
    {"Erf", OP_ERF, K_UNARY}, {"Exp", OP_EXP, K_UNARY}, {"Log", OP_LOG, K_UNARY}, {"Sqrt", OP_SQRT, K_UNARY},
    {"Neg", OP_NEG, K_UNARY}, {"Abs", OP_ABS, K_UNARY}, {"Reciprocal", OP_RECIP, K_UNARY},
    {"Floor", OP_FLOOR, K_UNARY}, {"Ceil", OP_CEIL, K_UNARY}, {"Round", OP_ROUND, K_UNARY}, {"Elu", OP_ELU, K_UNARY},
    {"Softplus", OP_SOFTPLUS, K_UNARY}, {"Gelu", OP_GELU, K_UNARY}, {"Sign", OP_SIGN, K_UNARY},
    {"Not", OP_NOT, K_UNARY}, {"Clip", OP_CLIP, K_UNARY},
    {"Add", OP_ADD, K_BINARY}, {"Sub", OP_SUB, K_BINARY}, {"Mul", OP_MUL, K_BINARY}, {"Div", OP_DIV, K_BINARY},
    {"Pow", OP_POW, K_BINARY}, {"Mod", OP_MOD, K_BINARY}, {"Equal", OP_EQ, K_BINARY}, {"Less", OP_LT, K_BINARY},
    {"Greater", OP_GT, K_BINARY}, {"LessOrEqual", OP_LE, K_BINARY}, {"GreaterOrEqual", OP_GE, K_BINARY},
    {"And", OP_AND, K_BINARY}, {"Or", OP_OR, K_BINARY}, {"Xor", OP_XOR, K_BINARY},
    {"Sum", OP_ADD, K_VARIADIC}, {"Mean", OP_ADD, K_VARIADIC}, {"Max", OP_MAX, K_VARIADIC},
    {"Min", OP_MIN, K_VARIADIC}, {"Where", OP_WHERE, K_WHERE},
};

typedef struct elt_params {
  float alpha, beta;
  float lo, hi; /* Clip bounds from attributes (opset < 11) */
} elt_params;

/* A binary float32 run: o[i] = f(a[i*sa], b[i*sb]) with sa, sb in {0, 1}. */
typedef void (*bin_f32_fn)(void *o, const void *a, int64_t sa, const void *b, int64_t sb, int64_t n);
typedef void (*un_f32_fn)(float *o, const float *a, int64_t n, const elt_params *p);

typedef struct elt_state {
  int op, kind;
  bool fast;              /* float32 vector path */
  bool mean;              /* Mean: scale the sum by 1/n at the end */
  int out_dtype;
  int in_dtype[64];
  elt_params p;
  un_f32_fn un;
  bin_f32_fn bin;
  int n_steps;            /* broadcast plans: one per binary step */
  fc_bcast plan[];
} elt_state;

/* ---------------------------------------------------------------- float32 unary loops */

#define UNARY_F32(NAME, EXPR)                                                                  \
  FC_SIMD_CLONES static void NAME(float *o, const float *a, int64_t n, const elt_params *p) { \
    const float alpha = p->alpha, beta = p->beta, lo = p->lo, hi = p->hi;                    \
    (void)alpha, (void)beta, (void)lo, (void)hi;                                              \
    FC_SIMD for (int64_t i = 0; i < n; i++) {                                                 \
      const float x = a[i];                                                                   \
      o[i] = (EXPR);                                                                          \
    }                                                                                         \
  }

UNARY_F32(u_relu, x > 0 ? x : 0.0f)
UNARY_F32(u_leaky, x >= 0 ? x : x * alpha)
UNARY_F32(u_sigmoid, fc_sigmoidf(x))
UNARY_F32(u_hsigmoid, fminf(fmaxf(alpha * x + beta, 0.0f), 1.0f))
UNARY_F32(u_hswish, x * fminf(fmaxf(x * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f))
UNARY_F32(u_tanh, fc_tanhf(x))
UNARY_F32(u_erf, fc_erff(x))
UNARY_F32(u_exp, x > 88.72283f ? INFINITY : fc_expf(x))
UNARY_F32(u_neg, -x)
UNARY_F32(u_abs, fabsf(x))
UNARY_F32(u_recip, 1.0f / x)
UNARY_F32(u_floor, floorf(x))
UNARY_F32(u_ceil, ceilf(x))
UNARY_F32(u_round, rintf(x)) /* ties to even, like ONNX Round */
UNARY_F32(u_elu, x >= 0 ? x : alpha * (fc_expf(x) - 1.0f))
UNARY_F32(u_gelu, 0.5f * x * (1.0f + fc_erff(x * 0.70710678118654752f)))
UNARY_F32(u_gelu_tanh, 0.5f * x * (1.0f + fc_tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x))))
UNARY_F32(u_sign, (float)((x > 0) - (x < 0)))
UNARY_F32(u_clip, fminf(fmaxf(x, lo), hi))
UNARY_F32(u_square, x * x)
UNARY_F32(u_cube, x * x * x)

/* libm-bound ops: not hot in the models we target, so plain loops. */
static void u_log(float *o, const float *a, int64_t n, const elt_params *p) {
  for (int64_t i = 0; i < n; i++) o[i] = logf(a[i]);
}
static void u_sqrt(float *o, const float *a, int64_t n, const elt_params *p) {
  for (int64_t i = 0; i < n; i++) o[i] = sqrtf(a[i]);
}
static void u_softplus(float *o, const float *a, int64_t n, const elt_params *p) {
  /* log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|) */
  for (int64_t i = 0; i < n; i++) o[i] = fmaxf(a[i], 0.0f) + log1pf(expf(-fabsf(a[i])));
}
static void u_copy(float *o, const float *a, int64_t n, const elt_params *p) {
  if (o != a) memcpy(o, a, (size_t)n * sizeof(float));
}

static un_f32_fn unary_f32(int op) {
  switch (op) {
    case OP_RELU: return u_relu;
    case OP_LEAKY: return u_leaky;
    case OP_SIGMOID: return u_sigmoid;
    case OP_HSIGMOID: return u_hsigmoid;
    case OP_HSWISH: return u_hswish;
    case OP_TANH: return u_tanh;
    case OP_ERF: return u_erf;
    case OP_EXP: return u_exp;
    case OP_LOG: return u_log;
    case OP_SQRT: return u_sqrt;
    case OP_NEG: return u_neg;
    case OP_ABS: return u_abs;
    case OP_RECIP: return u_recip;
    case OP_FLOOR: return u_floor;
    case OP_CEIL: return u_ceil;
    case OP_ROUND: return u_round;
    case OP_ELU: return u_elu;
    case OP_SOFTPLUS: return u_softplus;
    case OP_GELU: return u_gelu;
    case OP_GELU_TANH: return u_gelu_tanh;
    case OP_SIGN: return u_sign;
    case OP_CLIP: return u_clip;
    case OP_COPY: return u_copy;
    case OP_SQUARE: return u_square;
    case OP_CUBE: return u_cube;
    default: return NULL;
  }
}

/* ---------------------------------------------------------------- float32 binary loops */

#define BINARY(NAME, TI, TO, EXPR)                                                                      \
  FC_SIMD_CLONES static void NAME(void *o_, const void *a_, int64_t sa, const void *b_, int64_t sb, int64_t n) { \
    TO *o = o_;                                                                                         \
    const TI *a = a_, *b = b_;                                                                          \
    if (sa && sb) {                                                                                     \
      FC_SIMD for (int64_t i = 0; i < n; i++) {                                                         \
        const TI x = a[i], y = b[i];                                                                    \
        o[i] = (EXPR);                                                                                  \
      }                                                                                                 \
    } else if (sa) {                                                                                    \
      const TI y = b[0];                                                                                \
      FC_SIMD for (int64_t i = 0; i < n; i++) {                                                         \
        const TI x = a[i];                                                                              \
        o[i] = (EXPR);                                                                                  \
      }                                                                                                 \
    } else if (sb) {                                                                                    \
      const TI x = a[0];                                                                                \
      FC_SIMD for (int64_t i = 0; i < n; i++) {                                                         \
        const TI y = b[i];                                                                              \
        o[i] = (EXPR);                                                                                  \
      }                                                                                                 \
    } else {                                                                                            \
      const TI x = a[0], y = b[0];                                                                      \
      const TO v = (EXPR);                                                                              \
      for (int64_t i = 0; i < n; i++) o[i] = v;                                                         \
    }                                                                                                   \
  }

BINARY(b_add, float, float, x + y)
BINARY(b_sub, float, float, x - y)
BINARY(b_mul, float, float, x * y)
BINARY(b_div, float, float, x / y)
BINARY(b_max, float, float, x != x ? x : (x > y ? x : y)) /* NaN propagates, like ONNX Max */
BINARY(b_min, float, float, x != x ? x : (x < y ? x : y))
BINARY(b_eq, float, uint8_t, x == y)
BINARY(b_lt, float, uint8_t, x < y)
BINARY(b_gt, float, uint8_t, x > y)
BINARY(b_le, float, uint8_t, x <= y)
BINARY(b_ge, float, uint8_t, x >= y)
BINARY(b_and, uint8_t, uint8_t, (x != 0) & (y != 0))
BINARY(b_or, uint8_t, uint8_t, (x != 0) | (y != 0))
BINARY(b_xor, uint8_t, uint8_t, (x != 0) ^ (y != 0))

static void b_pow(void *o_, const void *a_, int64_t sa, const void *b_, int64_t sb, int64_t n) {
  float *o = o_;
  const float *a = a_, *b = b_;
  for (int64_t i = 0; i < n; i++) o[i] = powf(a[i * sa], b[i * sb]);
}
static void b_fmod(void *o_, const void *a_, int64_t sa, const void *b_, int64_t sb, int64_t n) {
  float *o = o_;
  const float *a = a_, *b = b_;
  for (int64_t i = 0; i < n; i++) o[i] = fmodf(a[i * sa], b[i * sb]);
}
static void b_mod(void *o_, const void *a_, int64_t sa, const void *b_, int64_t sb, int64_t n) {
  float *o = o_;
  const float *a = a_, *b = b_;
  for (int64_t i = 0; i < n; i++) { /* Python-style: the result takes the divisor's sign */
    float x = a[i * sa], y = b[i * sb], r = fmodf(x, y);
    o[i] = (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
  }
}

static bin_f32_fn binary_f32(int op) {
  switch (op) {
    case OP_ADD: return b_add;
    case OP_SUB: return b_sub;
    case OP_MUL: return b_mul;
    case OP_DIV: return b_div;
    case OP_POW: return b_pow;
    case OP_MAX: return b_max;
    case OP_MIN: return b_min;
    case OP_MOD: return b_mod;
    case OP_FMOD: return b_fmod;
    case OP_EQ: return b_eq;
    case OP_LT: return b_lt;
    case OP_GT: return b_gt;
    case OP_LE: return b_le;
    case OP_GE: return b_ge;
    case OP_AND: return b_and;
    case OP_OR: return b_or;
    case OP_XOR: return b_xor;
    default: return NULL;
  }
}

/* ---------------------------------------------------------------- scalar path, any dtype */

static double unary_f64(int op, double x, const elt_params *p) {
  switch (op) {
    case OP_RELU: return x > 0 ? x : 0;
    case OP_LEAKY: return x >= 0 ? x : x * p->alpha;
    case OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case OP_HSIGMOID: return fmin(fmax(p->alpha * x + p->beta, 0), 1);
    case OP_HSWISH: return x * fmin(fmax(x / 6.0 + 0.5, 0), 1);
    case OP_TANH: return tanh(x);
    case OP_ERF: return erf(x);
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SQRT: return sqrt(x);
    case OP_NEG: return -x;
    case OP_ABS: return fabs(x);
    case OP_RECIP: return 1.0 / x;
    case OP_FLOOR: return floor(x);
    case OP_CEIL: return ceil(x);
    case OP_ROUND: return nearbyint(x);
    case OP_ELU: return x >= 0 ? x : p->alpha * expm1(x);
    case OP_SOFTPLUS: return fmax(x, 0) + log1p(exp(-fabs(x)));
    case OP_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case OP_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case OP_SIGN: return (x > 0) - (x < 0);
    case OP_NOT: return x == 0;
    case OP_CLIP: return fmin(fmax(x, p->lo), p->hi);
    case OP_SQUARE: return x * x;
    case OP_CUBE: return x * x * x;
    default: return x;
  }
}

static int64_t unary_i64(int op, int64_t x, int64_t lo, int64_t hi) {
  switch (op) {
    case OP_RELU: return x > 0 ? x : 0;
    case OP_NEG: return (int64_t)(0 - (uint64_t)x);
    case OP_ABS: return x < 0 ? (int64_t)(0 - (uint64_t)x) : x;
    case OP_SIGN: return (x > 0) - (x < 0);
    case OP_NOT: return x == 0;
    case OP_CLIP: return x < lo ? lo : x > hi ? hi : x;
    case OP_SQUARE: return (int64_t)((uint64_t)x * (uint64_t)x);
    case OP_CUBE: return (int64_t)((uint64_t)x * (uint64_t)x * (uint64_t)x);
    default: return x;
  }
}

static bool dtype_unsigned(int dt) {
  return dt == FC_DT_UINT8 || dt == FC_DT_UINT16 || dt == FC_DT_UINT32 || dt == FC_DT_UINT64 || dt == FC_DT_BOOL;
}

static int64_t ipow(int64_t base, int64_t e) {
  if (e < 0) return base == 1 ? 1 : base == -1 ? (e % 2 ? -1 : 1) : 0;
  uint64_t r = 1, b = (uint64_t)base;
  while (e) {
    if (e & 1) r *= b;
    b *= b;
    e >>= 1;
  }
  return (int64_t)r;
}

/* Integer arithmetic with wrap-around, truncating division and no trap on /0 (ONNX leaves it
 * undefined; we return 0 rather than crash). Unsigned types compare and divide as unsigned. */
static int64_t binary_int(int op, int64_t x, int64_t y, bool uns) {
  uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
  switch (op) {
    case OP_ADD: return (int64_t)(ux + uy);
    case OP_SUB: return (int64_t)(ux - uy);
    case OP_MUL: return (int64_t)(ux * uy);
    case OP_DIV:
      if (y == 0) return 0;
      if (uns) return (int64_t)(ux / uy);
      return (x == INT64_MIN && y == -1) ? INT64_MIN : x / y;
    case OP_MOD:
    case OP_FMOD: {
      if (y == 0) return 0;
      if (uns) return (int64_t)(ux % uy);
      if (x == INT64_MIN && y == -1) return 0;
      int64_t r = x % y;
      if (op == OP_MOD && r != 0 && ((r < 0) != (y < 0))) r += y;
      return r;
    }
    case OP_POW: return ipow(x, y);
    case OP_MAX: return uns ? (ux > uy ? x : y) : (x > y ? x : y);
    case OP_MIN: return uns ? (ux < uy ? x : y) : (x < y ? x : y);
    case OP_EQ: return x == y;
    case OP_LT: return uns ? ux < uy : x < y;
    case OP_GT: return uns ? ux > uy : x > y;
    case OP_LE: return uns ? ux <= uy : x <= y;
    case OP_GE: return uns ? ux >= uy : x >= y;
    case OP_AND: return (x != 0) && (y != 0);
    case OP_OR: return (x != 0) || (y != 0);
    case OP_XOR: return (x != 0) != (y != 0);
    default: return x;
  }
}

static double binary_f64(int op, double x, double y) {
  switch (op) {
    case OP_ADD: return x + y;
    case OP_SUB: return x - y;
    case OP_MUL: return x * y;
    case OP_DIV: return x / y;
    case OP_POW: return pow(x, y);
    case OP_MAX: return isnan(x) || isnan(y) ? NAN : x > y ? x : y;
    case OP_MIN: return isnan(x) || isnan(y) ? NAN : x < y ? x : y;
    case OP_FMOD: return fmod(x, y);
    case OP_MOD: {
      double r = fmod(x, y);
      return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
    }
    case OP_EQ: return x == y;
    case OP_LT: return x < y;
    case OP_GT: return x > y;
    case OP_LE: return x <= y;
    case OP_GE: return x >= y;
    case OP_AND: return (x != 0) && (y != 0);
    case OP_OR: return (x != 0) || (y != 0);
    case OP_XOR: return (x != 0) != (y != 0);
    default: return x;
  }
}

/* ---------------------------------------------------------------- run-time drivers */

typedef struct bin_run {
  const elt_state *s;
  void *o;
  const void *a, *b;
  int a_dtype, b_dtype;
  size_t es_o, es_a, es_b;
} bin_run;

static void bin_fast_row(void *ctx, int64_t out_off, const int64_t *in_off, const int64_t *inner, int64_t len) {
  const bin_run *r = ctx;
  r->s->bin((char *)r->o + (size_t)out_off * r->es_o, (const char *)r->a + (size_t)in_off[0] * r->es_a, inner[0],
            (const char *)r->b + (size_t)in_off[1] * r->es_b, inner[1], len);
}

static void bin_generic_row(void *ctx, int64_t out_off, const int64_t *in_off, const int64_t *inner, int64_t len) {
  const bin_run *r = ctx;
  int op = r->s->op, od = r->s->out_dtype, ad = r->a_dtype, bd = r->b_dtype;
  bool a_int = fc_dtype_is_int(ad), b_int = fc_dtype_is_int(bd), uns = dtype_unsigned(ad);
  for (int64_t i = 0; i < len; i++) {
    int64_t ia = in_off[0] + i * inner[0], ib = in_off[1] + i * inner[1], io = out_off + i;
    if (a_int && (b_int || op != OP_POW)) {
      int64_t y = b_int ? fc_data_get_i64(bd, r->b, ib) : (int64_t)fc_data_get_f64(bd, r->b, ib);
      fc_data_set_i64(od, r->o, io, binary_int(op, fc_data_get_i64(ad, r->a, ia), y, uns));
    } else if (a_int) { /* Pow(int, float): computed in double, truncated into the base's type */
      double v = pow((double)fc_data_get_i64(ad, r->a, ia), fc_data_get_f64(bd, r->b, ib));
      fc_data_set_f64(od, r->o, io, trunc(v));
    } else {
      fc_data_set_f64(od, r->o, io, binary_f64(op, fc_data_get_f64(ad, r->a, ia), fc_data_get_f64(bd, r->b, ib)));
    }
  }
}

static void run_binary_step(const elt_state *s, const fc_bcast *plan, int threads, void *o, const void *a, int ad,
                            const void *b, int bd) {
  bin_run r = {s, o, a, b, ad, bd, fc_dtype_size(s->out_dtype), fc_dtype_size(ad), fc_dtype_size(bd)};
  fc_bcast_run(plan, threads, s->fast ? bin_fast_row : bin_generic_row, &r);
}

typedef struct un_run {
  un_f32_fn fn;
  const elt_params *p;
  float *o;
  const float *a;
} un_run;

static void un_range(void *ctx, int64_t b, int64_t e) {
  const un_run *r = ctx;
  r->fn(r->o + b, r->a + b, e - b, r->p);
}

static void run_unary(const fc_exec_node *en, const elt_state *s, const fc_exec_io *io) {
  const fc_value *x = fc_en_in(en, 0);
  int64_t n = fc_value_numel(x);
  elt_params p = s->p;
  int64_t ilo = INT64_MIN, ihi = INT64_MAX;
  if (s->op == OP_CLIP) { /* opset >= 11 takes the bounds as (possibly run-time) scalar inputs */
    const fc_value *lo = fc_en_in(en, 1), *hi = fc_en_in(en, 2);
    if (lo && io->in[1]) {
      p.lo = (float)fc_data_get_f64(lo->dtype, io->in[1], 0);
      ilo = fc_data_get_i64(lo->dtype, io->in[1], 0);
    }
    if (hi && io->in[2]) {
      p.hi = (float)fc_data_get_f64(hi->dtype, io->in[2], 0);
      ihi = fc_data_get_i64(hi->dtype, io->in[2], 0);
    }
  }
  if (s->fast) {
    un_run r = {s->un, &p, io->out[0], io->in[0]};
    fc_parallel_range(en->threads, n, FC_PAR_GRAIN, un_range, &r);
    return;
  }
  int dt = x->dtype, od = s->out_dtype;
  if (fc_dtype_is_int(dt)) {
    for (int64_t i = 0; i < n; i++)
      fc_data_set_i64(od, io->out[0], i, unary_i64(s->op, fc_data_get_i64(dt, io->in[0], i), ilo, ihi));
  } else {
    for (int64_t i = 0; i < n; i++)
      fc_data_set_f64(od, io->out[0], i, unary_f64(s->op, fc_data_get_f64(dt, io->in[0], i), &p));
  }
}

/* Where(cond, x, y) on raw elements of size ES. */
#define WHERE_ROW(NAME, T)                                                                                        \
  FC_SIMD_CLONES static void NAME(void *o_, const uint8_t *c, int64_t sc, const void *x_, int64_t sx, const void *y_, \
                                  int64_t sy, int64_t n) {                                                        \
    T *o = o_;                                                                                                    \
    const T *x = x_, *y = y_;                                                                                     \
    if (sc && sx && sy) {                                                                                         \
      FC_SIMD for (int64_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : y[i];                                          \
    } else {                                                                                                      \
      for (int64_t i = 0; i < n; i++) o[i] = c[i * sc] ? x[i * sx] : y[i * sy];                                   \
    }                                                                                                             \
  }
WHERE_ROW(where1, uint8_t)
WHERE_ROW(where2, uint16_t)
WHERE_ROW(where4, uint32_t)
WHERE_ROW(where8, uint64_t)

typedef struct where_run {
  void *o;
  const void *c, *x, *y;
  size_t es;
} where_run;

static void where_row(void *ctx, int64_t out_off, const int64_t *in_off, const int64_t *inner, int64_t len) {
  const where_run *r = ctx;
  size_t es = r->es;
  void *o = (char *)r->o + (size_t)out_off * es;
  const uint8_t *c = (const uint8_t *)r->c + in_off[0];
  const char *x = (const char *)r->x + (size_t)in_off[1] * es, *y = (const char *)r->y + (size_t)in_off[2] * es;
  switch (es) {
    case 1: where1(o, c, inner[0], x, inner[1], y, inner[2], len); break;
    case 2: where2(o, c, inner[0], x, inner[1], y, inner[2], len); break;
    case 4: where4(o, c, inner[0], x, inner[1], y, inner[2], len); break;
    default: where8(o, c, inner[0], x, inner[1], y, inner[2], len); break;
  }
}

typedef struct scale_run {
  float *o;
  float k;
} scale_run;

static void scale_range(void *ctx, int64_t b, int64_t e) {
  const scale_run *r = ctx;
  float k = r->k, *o = r->o;
  for (int64_t i = b; i < e; i++) o[i] *= k;
}

static void elt_run(const fc_exec_node *en, const fc_exec_io *io) {
  const elt_state *s = en->state;
  const fc_node *n = en->node;
  const fc_value *y = fc_en_out(en, 0);
  if (!io->out[0]) return;
  switch (s->kind) {
    case K_UNARY: run_unary(en, s, io); return;
    case K_BINARY:
      run_binary_step(s, &s->plan[0], en->threads, io->out[0], io->in[0], s->in_dtype[0], io->in[1], s->in_dtype[1]);
      return;
    case K_WHERE: {
      where_run r = {io->out[0], io->in[0], io->in[1], io->in[2], fc_dtype_size(y->dtype)};
      fc_bcast_run(&s->plan[0], en->threads, where_row, &r);
      return;
    }
    default: break;
  }
  /* variadic: out = in0 ∘ in1, then out = out ∘ in_k; a single input is copied through */
  if (n->n_inputs == 1) {
    size_t bytes = (size_t)fc_value_numel(y) * fc_dtype_size(y->dtype);
    if (io->out[0] != io->in[0]) memcpy(io->out[0], io->in[0], bytes);
    return;
  }
  run_binary_step(s, &s->plan[0], en->threads, io->out[0], io->in[0], s->in_dtype[0], io->in[1], s->in_dtype[1]);
  for (int k = 2; k < n->n_inputs; k++)
    run_binary_step(s, &s->plan[k - 1], en->threads, io->out[0], io->out[0], s->out_dtype, io->in[k], s->in_dtype[k]);
  if (s->mean) {
    scale_run r = {io->out[0], 1.0f / (float)n->n_inputs};
    fc_parallel_range(en->threads, fc_value_numel(y), FC_PAR_GRAIN, scale_range, &r);
  }
}

/* ---------------------------------------------------------------- plan time */

static const op_row *find_row(const char *name) {
  for (size_t i = 0; i < sizeof op_rows / sizeof op_rows[0]; i++)
    if (!strcmp(op_rows[i].name, name)) return &op_rows[i];
  return NULL;
}

static bool holdable(int dt) { return fc_dtype_size(dt) != 0 && dt != FC_DT_FLOAT16; }

/* Pow with a constant scalar exponent becomes a cheap unary op (LayerNorm exports square via Pow). */
static int pow_shortcut(const fc_value *e) {
  if (!e || !e->data || fc_value_numel(e) != 1 || !fc_dtype_is_float(e->dtype)) return -1;
  double v = fc_data_get_f64(e->dtype, e->data, 0);
  return v == 1.0 ? OP_COPY : v == 2.0 ? OP_SQUARE : v == 3.0 ? OP_CUBE : v == 0.5 ? OP_SQRT : v == -1.0 ? OP_RECIP : -1;
}

static fc_status elt_prepare(fc_exec_node *en, fc_err *err) {
  const fc_node *n = en->node;
  const op_row *row = find_row(n->op_type);
  if (!row) return fc_kfail(en, err, "no elementwise kernel");
  int n_in = n->n_inputs;
  if (n_in < 1 || n_in > 64) return fc_kfail(en, err, "%d inputs", n_in);
  int steps = row->kind == K_VARIADIC ? (n_in > 1 ? n_in - 1 : 0) : 1;
  elt_state *s = fc_kstate(en, sizeof(elt_state) + (size_t)(steps ? steps : 1) * sizeof(fc_bcast), err);
  if (!s) return err->status;
  const fc_value *y = fc_en_out(en, 0), *x = fc_en_in(en, 0);
  s->op = row->op;
  s->kind = row->kind;
  s->n_steps = steps;
  s->out_dtype = y->dtype;
  s->mean = !strcmp(n->op_type, "Mean");
  for (int i = 0; i < n_in; i++) {
    const fc_value *v = fc_en_in(en, i);
    if (!v && !(row->op == OP_CLIP && i > 0)) return fc_kfail(en, err, "input %d is missing", i);
    s->in_dtype[i] = v ? v->dtype : FC_DT_FLOAT;
    if (v && !holdable(v->dtype)) return fc_kfail(en, err, "dtype %s is not supported", fc_dtype_name(v->dtype));
  }
  if (!holdable(y->dtype)) return fc_kfail(en, err, "dtype %s is not supported", fc_dtype_name(y->dtype));
  s->p.alpha = fc_attr_float(n, "alpha", row->op == OP_LEAKY ? 0.01f : row->op == OP_HSIGMOID ? 0.2f : 1.0f);
  s->p.beta = fc_attr_float(n, "beta", 0.5f);
  s->p.lo = fc_attr_float(n, "min", -INFINITY);
  s->p.hi = fc_attr_float(n, "max", INFINITY);
  if (row->op == OP_GELU) {
    const char *approx = fc_attr_str(n, "approximate", "none");
    if (!strcmp(approx, "tanh")) s->op = OP_GELU_TANH;
    else if (strcmp(approx, "none")) return fc_kfail(en, err, "approximate='%s' is not supported", approx);
  }
  if (row->op == OP_MOD && fc_attr_int(n, "fmod", 0)) s->op = OP_FMOD;
  if (row->op == OP_POW && x->dtype == FC_DT_FLOAT && y->dtype == FC_DT_FLOAT) {
    int sc = pow_shortcut(fc_en_in(en, 1));
    if (sc >= 0) {
      s->op = sc;
      s->kind = K_UNARY;
    }
  }
  if (row->op == OP_WHERE) {
    if (x->dtype != FC_DT_BOOL) return fc_kfail(en, err, "condition must be bool");
    if (fc_en_in(en, 1)->dtype != y->dtype || fc_en_in(en, 2)->dtype != y->dtype)
      return fc_kfail(en, err, "x and y must share the output's dtype");
  }
  if (s->kind == K_UNARY) {
    if (s->op == OP_NOT && x->dtype != FC_DT_BOOL) return fc_kfail(en, err, "Not needs bool input");
    for (int i = 1; row->op == OP_CLIP && i < n_in; i++) {
      const fc_value *bound = fc_en_in(en, i);
      if (bound && fc_value_numel(bound) != 1) return fc_kfail(en, err, "Clip bounds must be scalars");
    }
    bool int_ok = s->op == OP_RELU || s->op == OP_NEG || s->op == OP_ABS || s->op == OP_SIGN || s->op == OP_NOT ||
                  s->op == OP_CLIP || s->op == OP_SQUARE || s->op == OP_CUBE;
    if (fc_dtype_is_int(x->dtype) && !int_ok)
      return fc_kfail(en, err, "integer input (%s) is not supported", fc_dtype_name(x->dtype));
    s->fast = x->dtype == FC_DT_FLOAT && y->dtype == FC_DT_FLOAT;
    if (s->fast) s->un = unary_f32(s->op);
    return FC_OK;
  }
  if (row->op == OP_WHERE) {
    int ranks[3];
    const int64_t *dims[3];
    for (int i = 0; i < 3; i++) {
      ranks[i] = fc_en_in(en, i)->rank;
      dims[i] = fc_en_in(en, i)->dims;
    }
    fc_bcast_init(&s->plan[0], y->rank, y->dims, 3, ranks, dims);
    return FC_OK;
  }
  bool logic = s->op == OP_AND || s->op == OP_OR || s->op == OP_XOR;
  s->fast = true;
  for (int i = 0; i < n_in; i++) s->fast = s->fast && s->in_dtype[i] == (logic ? FC_DT_BOOL : FC_DT_FLOAT);
  if (s->mean && y->dtype != FC_DT_FLOAT) return fc_kfail(en, err, "Mean is only supported on float32");
  if (s->fast) s->bin = binary_f32(s->op);
  if (s->fast && !s->bin) return fc_kfail(en, err, "no float32 loop");
  for (int k = 0; k < steps; k++) {
    const fc_value *a = k == 0 ? fc_en_in(en, 0) : y, *b = fc_en_in(en, k + 1);
    int ranks[2] = {a->rank, b->rank};
    const int64_t *dims[2] = {a->dims, b->dims};
    fc_bcast_init(&s->plan[k], y->rank, y->dims, 2, ranks, dims);
  }
  return FC_OK;
}

static void elt_release(fc_exec_node *en) { fc_kstate_release(en); }

#define KROW(name) {.op_type = name, .prepare = elt_prepare, .run = elt_run, .release = elt_release}
const fc_kernel fc_kernels_eltwise[] = {
    KROW("Relu"), KROW("LeakyRelu"), KROW("Sigmoid"), KROW("HardSigmoid"), KROW("HardSwish"), KROW("Tanh"),
    KROW("Erf"), KROW("Exp"), KROW("Log"), KROW("Sqrt"), KROW("Neg"), KROW("Abs"), KROW("Reciprocal"),
    KROW("Floor"), KROW("Ceil"), KROW("Round"), KROW("Clip"), KROW("Elu"), KROW("Softplus"), KROW("Gelu"),
    KROW("Sign"), KROW("Not"), KROW("Add"), KROW("Sub"), KROW("Mul"), KROW("Div"), KROW("Pow"), KROW("Max"),
    KROW("Min"), KROW("Mod"), KROW("Sum"), KROW("Mean"), KROW("Equal"), KROW("Less"), KROW("Greater"),
    KROW("LessOrEqual"), KROW("GreaterOrEqual"), KROW("And"), KROW("Or"), KROW("Xor"), KROW("Where"),
    {.op_type = NULL},
};
