/* json_scalar.h: small inline helpers shared by the kernels' scanner and
 * the VM's raw reader: byte equality and the JSON number grammar. Header-
 * only so both hot loops inline them. */
#ifndef RJ_JSON_SCALAR_H
#define RJ_JSON_SCALAR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "json.h"

/* memcmp's sign for short byte strings, 8 bytes at a time without a libc
 * call: the first differing word, read big-endian, orders them. */
static inline int rj_bytes_order(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) {
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            x = __builtin_bswap64(x);
            y = __builtin_bswap64(y);
#endif
            return x < y ? -1 : 1;
        }
    }
    for (; n; a++, b++, n--)
        if (*a != *b)
            return *a < *b ? -1 : 1;
    return 0;
}

/* Short byte strings compared 8 bytes at a time, without a libc call
 * (most keys and values are a few bytes; memcmp's dispatch costs more). */
/* Short strings are the usual case: their tail is compared with loads
 * that overlap inside both strings (never a byte loop, never past n). */
static inline int rj_bytes_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (n >= 8) {
        uint64_t x, y;
        for (; n > 8; a += 8, b += 8, n -= 8) {
            memcpy(&x, a, 8);
            memcpy(&y, b, 8);
            if (x != y)
                return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, a, 4);
        memcpy(&y0, b, 4);
        memcpy(&x1, a + n - 4, 4);
        memcpy(&y1, b + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n == 0)
        return 1;
    return a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1];
}

/* The end of the JSON number at p (RFC 8259 grammar), or NULL with *bad
 * and *why saying where and what. *is_int: no fraction, no exponent. */
static inline const uint8_t *rj_number_scan(const uint8_t *p, const uint8_t *end, int *is_int,
                                            const uint8_t **bad, const char **why)
{
    const uint8_t *s = p;
    *is_int = 1;
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        *bad = s;
        *why = "invalid number";
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (!(p < end && *p >= '0' && *p <= '9')) {
            *bad = p;
            *why = "invalid number: digit expected after '.'";
            return NULL;
        }
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        *is_int = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!(p < end && *p >= '0' && *p <= '9')) {
            *bad = p;
            *why = "invalid number: digit expected in exponent";
            return NULL;
        }
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        *is_int = 0;
    }
    return p;
}

/* The int64 value of integer text [s, e) (an optional '-', then digits):
 * 1 and *out if it fits, 0 if it overflows. */
static inline int rj_number_int64(const uint8_t *s, const uint8_t *e, int64_t *out)
{
    int neg = s < e && *s == '-';
    uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (const uint8_t *d = s + neg; d < e; d++) {
        uint64_t digit = (uint64_t)(*d - '0');
        if (mag > (limit - digit) / 10)
            return 0;
        mag = mag * 10 + digit;
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 1;
}

/* A wanted number in one pass, when it is the usual kind: an integer of
 * at most 18 digits, or a decimal without exponent whose digits make a
 * mantissa below 2^53 and whose fraction has at most 22 digits (then
 * mantissa / 10^fraction is one correctly rounded division of exact
 * doubles, as in Clinger's fast path: the same double float() gives).
 * Returns the end, or NULL for everything else (the two-pass path then
 * validates, converts and reports). */
static inline const uint8_t *rj_number_fused(const uint8_t *p, const uint8_t *end, rj_value *v)
{
    const uint8_t *q = p + (*p == '-');
    uint64_t mant = 0;
    unsigned nd = 0, frac = 0;
    if (q >= end)
        return NULL;
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        for (; q < end && (unsigned)(*q - '0') < 10; q++, nd++)
            mant = mant * 10 + (unsigned)(*q - '0');
    } else {
        return NULL;
    }
    if (q < end && *q == '.') {
        const uint8_t *f = ++q;
        for (; q < end && (unsigned)(*q - '0') < 10; q++, nd++)
            mant = mant * 10 + (unsigned)(*q - '0');
        frac = (unsigned)(q - f);
        if (!frac)
            return NULL;
    }
    if (nd > 18 || (q < end && (*q | 0x20) == 'e'))
        return NULL; /* the mantissa may have wrapped; or an exponent */
    if (!frac) {
        rj_value_set_tag(v, RJ_V_INT, 0);
        v->num.i = *p == '-' ? -(int64_t)mant : (int64_t)mant;
    } else {
        if (mant > (1ULL << 53) || frac > 22)
            return NULL;
        double d = (double)mant / rj_pow10_exact[frac];
        rj_value_set_tag(v, RJ_V_DOUBLE, 0);
        v->num.d = *p == '-' ? -d : d;
    }
    return q;
}

#endif
