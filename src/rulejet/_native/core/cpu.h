/* cpu.h: CPU feature detection (x86 CPUID + XGETBV; other ISAs: none). */
#ifndef RJ_CPU_H
#define RJ_CPU_H

#include <stdint.h>

enum {
    RJ_CPU_SSE2 = 1u << 0,
    RJ_CPU_SSE42 = 1u << 1,
    RJ_CPU_AVX2 = 1u << 2, /* CPU bit and OS-enabled YMM state */
    RJ_CPU_PCLMUL = 1u << 3,
    RJ_CPU_BMI2 = 1u << 4,
    RJ_CPU_BMI1 = 1u << 5,
};

/* Bitmask of RJ_CPU_* features usable by this process. */
uint32_t rj_cpu_features(void);

#endif
