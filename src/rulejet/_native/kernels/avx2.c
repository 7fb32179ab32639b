/* avx2.c: 32-byte AVX2 kernel (with PCLMUL for the prefix xor).
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

#define RJ_KFN static inline __attribute__((target("avx2,bmi,bmi2,pclmul")))
#define RJ_SUFFIX avx2
#define RJ_KFN_OUTLINE static __attribute__((target("avx2,bmi,bmi2,pclmul"), noinline)) /* kept out of the hot loops */

RJ_KFN uint64_t rj_block_mask(const uint8_t *p, uint8_t c)
{
    const __m256i needle = _mm256_set1_epi8((char)c);
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    uint64_t mlo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, needle));
    uint64_t mhi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, needle));
    return mlo | (mhi << 32);
}

RJ_KFN uint64_t rj_mask64(__m256i lo, __m256i hi)
{
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(lo) |
           (uint64_t)(uint32_t)_mm256_movemask_epi8(hi) << 32;
}

#define RJ_SB_WIDTH 32

/* x's low n bytes (n <= 8), the rest zero; _SHORT: x's low min(n, 8)
 * bytes for n < 32 (bzhi keeps all 64 bits for an index of 64 to 255). */
#define RJ_LOW_BYTES(x, n) _bzhi_u64((x), (unsigned)(n) * 8)
#define RJ_LOW_BYTES_SHORT(x, n) _bzhi_u64((x), (unsigned)(n) * 8)

/* Byte constants as memory operands. Written with _mm256_set1_epi8 they
 * are rebuilt (mov, vmovd, vpbroadcastb) at every use, since the member
 * loop's calls clobber every vector register; as memory operands that the
 * compiler sees, GCC keeps their addresses on the stack around that loop.
 * So the compares that use them are one-instruction asm naming the
 * constant (hidden: a PC-relative operand in the shared object). Nothing
 * writes the constants. */
#define RJ_SPLAT(c) (long long)((uint64_t)(c) * 0x0101010101010101ULL)
#define RJ_CONST32(name, c)                                                  \
    __attribute__((visibility("hidden"), used)) const __m256i name = {      \
        RJ_SPLAT(c), RJ_SPLAT(c), RJ_SPLAT(c), RJ_SPLAT(c)}
RJ_CONST32(rj_v_quote, '"');
RJ_CONST32(rj_v_bslash, '\\');
RJ_CONST32(rj_v_space, 0x20);
RJ_CONST32(rj_v_open, '{');
RJ_CONST32(rj_v_close, '}');

/* v == constant, v | constant, constant > v (signed). */
#define RJ_ASM_OP(fn, insn, name)                                           \
    RJ_KFN __m256i fn(__m256i v)                                            \
    {                                                                       \
        __m256i r;                                                          \
        __asm__(insn " " #name "(%%rip), %1, %0" : "=x"(r) : "x"(v));       \
        return r;                                                           \
    }
RJ_ASM_OP(rj_eq_quote, "vpcmpeqb", rj_v_quote)
RJ_ASM_OP(rj_eq_bslash, "vpcmpeqb", rj_v_bslash)
RJ_ASM_OP(rj_eq_open, "vpcmpeqb", rj_v_open)
RJ_ASM_OP(rj_eq_close, "vpcmpeqb", rj_v_close)
RJ_ASM_OP(rj_or_space, "vpor", rj_v_space)

RJ_KFN __m256i rj_space_gt(__m256i v) /* 0x20 > v, signed */
{
    __m256i r;
    __asm__("vmovdqu rj_v_space(%%rip), %0\n\tvpcmpgtb %1, %0, %0" : "=&x"(r) : "x"(v));
    return r;
}

RJ_KFN uint64_t rj_string_bits(const uint8_t *p, uint64_t *high)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    /* Signed 0x20 > v also holds for bytes >= 0x80; those are removed
     * with the sign-bit mask, which is also the "high" output. */
    uint64_t sign = (uint32_t)_mm256_movemask_epi8(v);
    __m256i special = _mm256_or_si256(_mm256_or_si256(rj_eq_quote(v),
                                                      rj_eq_bslash(v)),
                                      rj_space_gt(v));
    *high = sign;
    return (uint32_t)_mm256_movemask_epi8(special) & ~sign;
}

/* For the RJ_SB_WIDTH bytes at p: the bits of every byte that stops a
 * plain ASCII string ('"', '\\', < 0x20, >= 0x80). */
RJ_KFN uint64_t rj_string_stops(const uint8_t *p)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    /* Signed 0x20 > v holds for bytes < 0x20 and >= 0x80: both count. */
    return (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(
        _mm256_or_si256(rj_eq_quote(v), rj_eq_bslash(v)), rj_space_gt(v)));
}

/* '{'/'[' and '}'/']' differ only in bit 0x20 (see scalar.c). */
RJ_KFN void rj_classify(const uint8_t *p, rj_blockmasks *m)
{
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    __m256i lo20 = rj_or_space(lo), hi20 = rj_or_space(hi);
    m->quote = rj_mask64(rj_eq_quote(lo), rj_eq_quote(hi));
    m->bslash = rj_mask64(rj_eq_bslash(lo), rj_eq_bslash(hi));
    m->open = rj_mask64(rj_eq_open(lo20), rj_eq_open(hi20));
    m->close = rj_mask64(rj_eq_close(lo20), rj_eq_close(hi20));
}

/* rj_classify for the RJ_SB_WIDTH bytes at p (small containers). */
RJ_KFN void rj_small_classify(const uint8_t *p, rj_blockmasks *m)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i v20 = rj_or_space(v);
    m->quote = (uint32_t)_mm256_movemask_epi8(rj_eq_quote(v));
    m->bslash = (uint32_t)_mm256_movemask_epi8(rj_eq_bslash(v));
    m->open = (uint32_t)_mm256_movemask_epi8(rj_eq_open(v20));
    m->close = (uint32_t)_mm256_movemask_epi8(rj_eq_close(v20));
}

/* Carry-less multiply by all-ones: bit i of the product's low half is the
 * xor of bits 0..i of x. */
RJ_KFN uint64_t rj_prefix_xor(uint64_t x)
{
    __m128i all = _mm_set1_epi8((char)0xFF);
    __m128i r = _mm_clmulepi64_si128(_mm_set_epi64x(0, (long long)x), all, 0);
    return (uint64_t)_mm_cvtsi128_si64(r);
}

RJ_KFN uint64_t rj_pair_mask(const uint8_t *a, const uint8_t *b, uint8_t x, uint8_t y)
{
    __m256i va = _mm256_loadu_si256((const __m256i *)(const void *)a);
    __m256i vb = _mm256_loadu_si256((const __m256i *)(const void *)b);
    return (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(
        _mm256_cmpeq_epi8(va, _mm256_set1_epi8((char)x)), _mm256_cmpeq_epi8(vb, _mm256_set1_epi8((char)y))));
}

#include "lines_generic.h"
#include "json_generic.h"
#include "find_generic.h"

const rj_kernel rj_kernel_avx2 = {
    .name = "avx2",
    .newline_ends = rj_newline_ends_avx2,
    .json_extract = rj_json_extract_avx2,
    .json_extract_line = rj_json_extract_line_avx2,
    .json_validate = rj_json_validate_avx2,
    .find = rj_find_avx2,
};
#endif
