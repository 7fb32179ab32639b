/* avx2.c: 32-byte AVX2 kernel.
 *
 * Only the functions here are compiled for AVX2 (target attribute); the
 * rest of the module stays baseline x86-64, so importing on a CPU without
 * AVX2 is safe. Dispatch calls this kernel only after cpu.c has confirmed
 * both the CPU bit and OS support for YMM state (XGETBV).
 */
#include "kernels.h"

#ifdef RJ_HAVE_X86_KERNELS
#include <immintrin.h>
#include <string.h>

#define RJ_KFN static inline __attribute__((target("avx2")))
#define RJ_SUFFIX avx2

RJ_KFN uint64_t rj_block_mask(const uint8_t *p, uint8_t c)
{
    const __m256i needle = _mm256_set1_epi8((char)c);
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    uint64_t mlo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, needle));
    uint64_t mhi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, needle));
    return mlo | (mhi << 32);
}

#include "lines_generic.h"

const rj_kernel rj_kernel_avx2 = {
    .name = "avx2",
    .newline_ends = rj_newline_ends_avx2,
};
#endif
