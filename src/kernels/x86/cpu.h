/* Run-time CPU feature detection (cpuid + xgetbv): which vector ISA the OS and CPU both support,
 * so release builds stay generic and ISA-specific kernels are chosen when the program starts. */
#ifndef FC_KERNELS_X86_CPU_H
#define FC_KERNELS_X86_CPU_H

typedef enum fc_isa {
  FC_ISA_SCALAR = 0, /* portable C */
  FC_ISA_AVX2 = 1,   /* AVX2 + FMA, 8 floats per vector */
  FC_ISA_AVX512 = 2  /* AVX-512F, 16 floats per vector */
} fc_isa;

/* The best ISA this machine runs, detected once. FLOPCUT_ISA=scalar|avx2|avx512 lowers it (never
 * raises it beyond what the CPU supports), for tests and benchmarks of the narrower kernels. */
fc_isa fc_cpu_isa(void);
/* True if `isa` can run here (the environment override does not apply). */
int fc_cpu_supports(fc_isa isa);
const char *fc_isa_name(fc_isa isa);
#endif
