/* cel_cmp.h: the exact orders of CEL numbers and strings, shared by the
 * VM and the per-field atom tables (cells.c), which must agree on them. */
#ifndef RJ_CEL_CMP_H
#define RJ_CEL_CMP_H

#include <math.h>
#include <string.h>

#include "json_scalar.h"
#include "vm.h"

/* Exact order of two numbers: -1, 0, 1, or 2 when unordered (NaN). */
static inline __attribute__((always_inline)) int num_cmp(const rj_cel *a, const rj_cel *b)
{
    if (a->type == RJ_C_INT && b->type == RJ_C_INT)
        return (a->n.i > b->n.i) - (a->n.i < b->n.i);
    if (a->type == RJ_C_DOUBLE && b->type == RJ_C_DOUBLE) {
        if (isnan(a->n.d) || isnan(b->n.d))
            return 2;
        return (a->n.d > b->n.d) - (a->n.d < b->n.d);
    }
    /* int vs double, exactly: doubles outside [-2^63, 2^63) are beyond
     * any int64; inside, compare the integral parts as ints, then the
     * fraction. */
    int flip = a->type == RJ_C_DOUBLE;
    int64_t i = flip ? b->n.i : a->n.i;
    double d = flip ? a->n.d : b->n.d;
    int r;
    if (isnan(d))
        return 2;
    if (d >= 9223372036854775808.0)
        r = -1;
    else if (d < -9223372036854775808.0)
        r = 1;
    else {
        double t = trunc(d);
        int64_t ti = (int64_t)t;
        if (i != ti)
            r = i > ti ? 1 : -1;
        else
            r = d > t ? -1 : d < t ? 1 : 0; /* i == trunc(d): the fraction decides */
    }
    return flip ? -r : r;
}

static inline __attribute__((always_inline)) int bytes_cmp(const rj_cel *a, const rj_cel *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = rj_bytes_order(a->n.ptr, b->n.ptr, n);
    if (c)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

#endif
