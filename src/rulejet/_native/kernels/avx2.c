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

/* UTF-8 validation by table lookups (Keiser and Lemire, "Validating UTF-8
 * in less than one instruction per byte", 2021; simdjson's lookup4): each
 * byte's error bits come from three 16-entry tables indexed by the high
 * and low nibble of the byte before it and the high nibble of its own,
 * plus the rule that the 2nd/3rd byte after a 3- or 4-byte lead is a
 * continuation. Only a yes/no: on "no" the scalar check finds the spot, so
 * every kernel reports the same offset. */
enum {
    RJ_U8_TOO_SHORT = 1 << 0,  /* a lead or ASCII, then a continuation missing */
    RJ_U8_TOO_LONG = 1 << 1,   /* ASCII, then a continuation */
    RJ_U8_OVERLONG_3 = 1 << 2, /* E0 80..9F */
    RJ_U8_TOO_LARGE = 1 << 3,  /* past U+10FFFF */
    RJ_U8_SURROGATE = 1 << 4,  /* ED A0..BF */
    RJ_U8_OVERLONG_2 = 1 << 5, /* C0, C1 */
    RJ_U8_TOO_LARGE_1000 = 1 << 6,
    RJ_U8_OVERLONG_4 = 1 << 6, /* F0 80..8F */
    RJ_U8_TWO_CONTS = 1 << 7,  /* a continuation after a continuation */
    RJ_U8_CARRY = RJ_U8_TOO_SHORT | RJ_U8_TOO_LONG | RJ_U8_TWO_CONTS,
};
#define RJ_U8_T16(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p)                              \
    _mm256_setr_epi8((char)(a), (char)(b), (char)(c), (char)(d), (char)(e), (char)(f), (char)(g), \
                     (char)(h), (char)(i), (char)(j), (char)(k), (char)(l), (char)(m), (char)(n), \
                     (char)(o), (char)(p), (char)(a), (char)(b), (char)(c), (char)(d), (char)(e), \
                     (char)(f), (char)(g), (char)(h), (char)(i), (char)(j), (char)(k), (char)(l), \
                     (char)(m), (char)(n), (char)(o), (char)(p))

/* Whether p[0..q - p) is valid UTF-8, where *q is ASCII (a string's
 * closing quote: a sequence cut short before it shows as an error at q or
 * earlier) and loads may run to limit (> q). */
RJ_KFN_OUTLINE int rj_utf8_valid_avx2(const uint8_t *p, const uint8_t *q, const uint8_t *limit)
{
    const __m256i b1_high = RJ_U8_T16(
        RJ_U8_TOO_LONG, RJ_U8_TOO_LONG, RJ_U8_TOO_LONG, RJ_U8_TOO_LONG, RJ_U8_TOO_LONG,
        RJ_U8_TOO_LONG, RJ_U8_TOO_LONG, RJ_U8_TOO_LONG, RJ_U8_TWO_CONTS, RJ_U8_TWO_CONTS,
        RJ_U8_TWO_CONTS, RJ_U8_TWO_CONTS, RJ_U8_TOO_SHORT | RJ_U8_OVERLONG_2, RJ_U8_TOO_SHORT,
        RJ_U8_TOO_SHORT | RJ_U8_OVERLONG_3 | RJ_U8_SURROGATE,
        RJ_U8_TOO_SHORT | RJ_U8_TOO_LARGE | RJ_U8_TOO_LARGE_1000 | RJ_U8_OVERLONG_4);
#define RJ_U8_BIG (RJ_U8_CARRY | RJ_U8_TOO_LARGE | RJ_U8_TOO_LARGE_1000)
    const __m256i b1_low = RJ_U8_T16(
        RJ_U8_CARRY | RJ_U8_OVERLONG_3 | RJ_U8_OVERLONG_2 | RJ_U8_OVERLONG_4,
        RJ_U8_CARRY | RJ_U8_OVERLONG_2, RJ_U8_CARRY, RJ_U8_CARRY, RJ_U8_CARRY | RJ_U8_TOO_LARGE,
        RJ_U8_BIG, RJ_U8_BIG, RJ_U8_BIG, RJ_U8_BIG, RJ_U8_BIG, RJ_U8_BIG, RJ_U8_BIG, RJ_U8_BIG,
        RJ_U8_BIG | RJ_U8_SURROGATE, RJ_U8_BIG, RJ_U8_BIG);
#undef RJ_U8_BIG
#define RJ_U8_CONT (RJ_U8_TOO_LONG | RJ_U8_OVERLONG_2 | RJ_U8_TWO_CONTS)
    const __m256i b2_high = RJ_U8_T16(
        RJ_U8_TOO_SHORT, RJ_U8_TOO_SHORT, RJ_U8_TOO_SHORT, RJ_U8_TOO_SHORT, RJ_U8_TOO_SHORT,
        RJ_U8_TOO_SHORT, RJ_U8_TOO_SHORT, RJ_U8_TOO_SHORT,
        RJ_U8_CONT | RJ_U8_OVERLONG_3 | RJ_U8_TOO_LARGE_1000 | RJ_U8_OVERLONG_4,
        RJ_U8_CONT | RJ_U8_OVERLONG_3 | RJ_U8_TOO_LARGE, RJ_U8_CONT | RJ_U8_SURROGATE | RJ_U8_TOO_LARGE,
        RJ_U8_CONT | RJ_U8_SURROGATE | RJ_U8_TOO_LARGE, RJ_U8_TOO_SHORT, RJ_U8_TOO_SHORT,
        RJ_U8_TOO_SHORT, RJ_U8_TOO_SHORT);
#undef RJ_U8_CONT
    const __m256i nibble = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    __m256i prev = zero, err = zero; /* before p: the opening quote (ASCII) */
    for (const uint8_t *b = p;; b += 32) {
        __m256i in;
        if (limit - b >= 32) {
            in = _mm256_loadu_si256((const __m256i *)(const void *)b);
        } else { /* the text's last bytes (what follows q is never counted) */
            uint8_t tmp[32] = {0};
            memcpy(tmp, b, (size_t)(limit - b));
            in = _mm256_loadu_si256((const __m256i *)(const void *)tmp);
        }
        /* The bytes 1, 2 and 3 places before each byte of in. */
        __m256i carry = _mm256_permute2x128_si256(prev, in, 0x21);
        __m256i prev1 = _mm256_alignr_epi8(in, carry, 15);
        __m256i prev2 = _mm256_alignr_epi8(in, carry, 14);
        __m256i prev3 = _mm256_alignr_epi8(in, carry, 13);
        __m256i special = _mm256_and_si256(
            _mm256_and_si256(
                _mm256_shuffle_epi8(b1_high, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), nibble)),
                _mm256_shuffle_epi8(b1_low, _mm256_and_si256(prev1, nibble))),
            _mm256_shuffle_epi8(b2_high, _mm256_and_si256(_mm256_srli_epi16(in, 4), nibble)));
        /* Bit 7 where a 3-byte lead is 2 back or a 4-byte lead 3 back:
         * exactly there the byte must be a continuation (the tables set
         * TWO_CONTS for a continuation after one). */
        __m256i must23 = _mm256_and_si256(
            _mm256_or_si256(_mm256_subs_epu8(prev2, _mm256_set1_epi8((char)(0xE0 - 0x80))),
                            _mm256_subs_epu8(prev3, _mm256_set1_epi8((char)(0xF0 - 0x80)))),
            _mm256_set1_epi8((char)0x80));
        __m256i e = _mm256_xor_si256(must23, special);
        if (q - b < 32) { /* the last block: only bytes up to the quote count */
            uint32_t bad = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(e, zero));
            return !_bzhi_u32(bad, (unsigned)(q - b) + 1) && _mm256_testz_si256(err, err);
        }
        err = _mm256_or_si256(err, e);
        prev = in;
    }
}
#define RJ_UTF8_VALID(p, q, limit) rj_utf8_valid_avx2(p, q, limit)

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
