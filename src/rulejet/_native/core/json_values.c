/* json_values.c: turning validated value spans into numbers and text.
 *
 * Inputs here were already checked by the scanner (number grammar, escape
 * syntax), so these functions assume well-formed spans and never read
 * outside [p, p + n).
 */
#include "json.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

const double rj_pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

double rj_number_to_double(const uint8_t *p, size_t n)
{
    /* Clinger's fast path: a mantissa below 2^53 and a power of ten up to
     * 1e22 are both exact doubles, so one multiply or divide rounds once,
     * correctly. Everything else goes to strtod_l in the C locale (glibc's
     * strtod is correctly rounded, as is Python's float()). */
    size_t i = 0;
    int neg = 0;
    if (i < n && p[i] == '-') {
        neg = 1;
        i++;
    }
    uint64_t mant = 0;
    int digits = 0, frac_digits = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        if (mant || p[i] != '0')
            digits++;
        mant = mant * 10 + (uint64_t)(p[i] - '0');
        if (digits > 15)
            goto slow;
    }
    if (i < n && p[i] == '.') {
        for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
            if (mant || p[i] != '0')
                digits++;
            mant = mant * 10 + (uint64_t)(p[i] - '0');
            frac_digits++;
            if (digits > 15 || frac_digits > 22)
                goto slow;
        }
    }
    long exp10 = 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        int eneg = 0;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            eneg = p[i++] == '-';
        for (; i < n; i++) {
            exp10 = exp10 * 10 + (p[i] - '0');
            if (exp10 > 1000)
                goto slow;
        }
        if (eneg)
            exp10 = -exp10;
    }
    exp10 -= frac_digits;
    if (exp10 < -22 || exp10 > 22)
        goto slow;
    {
        double d = (double)mant;
        d = exp10 < 0 ? d / rj_pow10_exact[-exp10] : d * rj_pow10_exact[exp10];
        return neg ? -d : d;
    }
slow:;
    char stack_buf[128];
    char *buf = n < sizeof stack_buf ? stack_buf : malloc(n + 1);
    if (!buf)
        return NAN; /* out of memory: caller checks with isnan */
    memcpy(buf, p, n);
    buf[n] = 0;
    pthread_once(&c_locale_once, make_c_locale);
    double d = c_locale ? strtod_l(buf, NULL, c_locale) : strtod(buf, NULL);
    if (buf != stack_buf)
        free(buf);
    return d;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c - 'a' + 10;
}

static uint32_t hex4(const uint8_t *p)
{
    return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 |
                      hexval(p[3]));
}

static size_t put_utf8(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) { /* includes lone surrogates: WTF-8 */
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the escape at p (p[0] == '\\'); writes UTF-8 to out, returns the
 * bytes consumed and sets *outlen. */
static size_t decode_escape(const uint8_t *p, size_t n, uint8_t *out, size_t *outlen)
{
    uint8_t c = p[1];
    switch (c) {
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    case 'u': {
        uint32_t cp = hex4(p + 2);
        /* A high surrogate directly followed by an escaped low one is one
         * code point; any other surrogate stays lone (as json.loads does). */
        if (cp >= 0xD800 && cp < 0xDC00 && n >= 12 && p[6] == '\\' && p[7] == 'u') {
            uint32_t lo = hex4(p + 8);
            if (lo >= 0xDC00 && lo < 0xE000) {
                *outlen = put_utf8(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), out);
                return 12;
            }
        }
        *outlen = put_utf8(cp, out);
        return 6;
    }
    default: out[0] = c; break; /* '"', '\\', '/' */
    }
    *outlen = 1;
    return 2;
}

size_t rj_unescape(const uint8_t *p, size_t n, uint8_t *out)
{
    size_t i = 0, k = 0;
    while (i < n) {
        const uint8_t *bs = memchr(p + i, '\\', n - i);
        size_t run = bs ? (size_t)(bs - (p + i)) : n - i;
        memmove(out + k, p + i, run);
        k += run;
        i += run;
        if (!bs)
            break;
        size_t w;
        i += decode_escape(p + i, n - i, out + k, &w);
        k += w;
    }
    return k;
}

int rj_escaped_equals(const uint8_t *p, size_t n, const char *want, size_t want_len)
{
    const uint8_t *w = (const uint8_t *)want;
    size_t i = 0, k = 0;
    while (i < n) {
        if (p[i] != '\\') {
            if (k >= want_len || w[k] != p[i])
                return 0;
            i++;
            k++;
            continue;
        }
        uint8_t tmp[4];
        size_t len;
        i += decode_escape(p + i, n - i, tmp, &len);
        if (k + len > want_len || memcmp(w + k, tmp, len))
            return 0;
        k += len;
    }
    return k == want_len;
}

size_t rj_utf8_check(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time. */
        if (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            if (!(x & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t j = 1; j < len; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            return i;
        i += len;
    }
    return n;
}
