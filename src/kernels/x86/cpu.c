/* cpuid + xgetbv feature detection. The one piece of global state the library keeps: the detected
 * ISA, computed once (racing threads compute the same value, so a plain int is enough). */
#include "kernels/x86/cpu.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define FC_HAVE_CPUID 1
#endif

static int detect_max(void) {
#ifdef FC_HAVE_CPUID
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return FC_ISA_SCALAR;
  int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
  if (!osxsave || !avx) return FC_ISA_SCALAR;
  unsigned xlo, xhi;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  (void)xhi;
  if ((xlo & 0x6) != 0x6) return FC_ISA_SCALAR; /* OS saves neither XMM nor YMM state */
  if (__get_cpuid_max(0, NULL) < 7) return FC_ISA_SCALAR;
  __cpuid_count(7, 0, a, b, c, d);
  int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
  /* AVX-512 also needs the OS to save opmask and the upper ZMM registers (XCR0 bits 5-7) */
  if (avx512f && (xlo & 0xe0) == 0xe0 && fma) return FC_ISA_AVX512;
  if (avx2 && fma) return FC_ISA_AVX2;
#endif
  return FC_ISA_SCALAR;
}

static int cached_max = -1, cached_isa = -1;

int fc_cpu_supports(fc_isa isa) {
  if (cached_max < 0) cached_max = detect_max();
  return (int)isa <= cached_max;
}

fc_isa fc_cpu_isa(void) {
  if (cached_isa < 0) {
    int best = fc_cpu_supports(FC_ISA_AVX512) ? FC_ISA_AVX512 : fc_cpu_supports(FC_ISA_AVX2) ? FC_ISA_AVX2 : FC_ISA_SCALAR;
    const char *env = getenv("FLOPCUT_ISA");
    if (env) {
      int want = !strcmp(env, "scalar") ? FC_ISA_SCALAR : !strcmp(env, "avx2") ? FC_ISA_AVX2 : best;
      if (want < best) best = want;
    }
    cached_isa = best;
  }
  return (fc_isa)cached_isa;
}

const char *fc_isa_name(fc_isa isa) {
  switch (isa) {
  case FC_ISA_AVX512: return "avx512";
  case FC_ISA_AVX2: return "avx2";
  default: return "scalar";
  }
}
