/* cpu.c: reads CPU feature bits, and for AVX2 also checks that the OS
 * saves YMM registers on context switch (OSXSAVE + XCR0 bits 1 and 2);
 * a CPU bit alone is not enough, and using AVX2 without OS support
 * faults. Never executes an instruction the CPU might lack.
 */
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t rj_xgetbv0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

uint32_t rj_cpu_features(void)
{
    unsigned a, b, c, d;
    uint32_t f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (d & bit_SSE2)
        f |= RJ_CPU_SSE2;
    if (c & bit_SSE4_2)
        f |= RJ_CPU_SSE42;
    if (c & bit_PCLMUL)
        f |= RJ_CPU_PCLMUL;
    int os_ymm = 0;
    if ((c & bit_OSXSAVE) && (c & bit_AVX))
        os_ymm = (rj_xgetbv0() & 0x6) == 0x6; /* XMM and YMM state */
    if (__get_cpuid_max(0, 0) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if ((b & bit_AVX2) && os_ymm)
            f |= RJ_CPU_AVX2;
        if (b & bit_BMI2)
            f |= RJ_CPU_BMI2;
        if (b & bit_BMI)
            f |= RJ_CPU_BMI1;
    }
    return f;
}
#else
uint32_t rj_cpu_features(void) { return 0; }
#endif
