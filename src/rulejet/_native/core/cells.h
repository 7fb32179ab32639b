/* cells.h: per-field atom tables (see rj_slot_cells in vm.h). */
#ifndef RJ_CELLS_H
#define RJ_CELLS_H

#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cel_cmp.h"
#include "vm.h"

/* Group the program's table-friendly atoms by field, renumber atoms so
 * each group is contiguous (rewriting rules[].pre and the trees), and
 * build the tables.
 * An atom outside any table keeps cells == -1. */
int rj_cells_build(rj_program *p);
/* Set rules' bits in the cells' rows, and p->table_and (after build). */
int rj_cells_rule_bits(rj_program *p);
void rj_cells_free(rj_program *p);

/* Past these strings looked for by `"s" in field` atoms, a field's table
 * would need too many container rows (2^n): its atoms stay one by one. */
#define RJ_CELLS_MAX_MEMBERS 6

/* Rows: the number cells, the string cells, then these, then containers. */
enum { RJ_ROW_MISSING = 0, RJ_ROW_FALSE, RJ_ROW_TRUE, RJ_ROW_NULL, RJ_ROW_CONTAINERS };

/* The row of one of the non-ordered kinds above (container: + a subset). */
static inline int64_t rj_cells_kind_row(const rj_slot_cells *g, uint32_t kind)
{
    return 2 * (int64_t)g->n_num + 2 * (int64_t)g->n_str + 2 + kind;
}

static inline size_t rj_cells_n_rows(const rj_slot_cells *g)
{
    return (size_t)rj_cells_kind_row(g, RJ_ROW_CONTAINERS) + ((size_t)1 << g->n_member);
}

/* The first 8 bytes of a string as a big-endian number (zero-padded):
 * keys order as the strings do, except that equal keys need a full
 * comparison (a prefix shorter than 8 bytes, or a longer common one). */
static inline uint64_t rj_str_key(const uint8_t *p, uint32_t len)
{
    /* Loads inside [p, p + len) only (the bytes after may not be ours),
     * without a short copy through memory (its reload would stall). */
    uint64_t k;
    if (len >= 8) {
        memcpy(&k, p, 8);
    } else if (len >= 4) { /* two overlapping 4-byte loads */
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + len - 4, 4);
        k = lo | (uint64_t)hi << (8 * (len - 4));
    } else if (len) {
        k = p[0] | (uint64_t)p[len / 2] << (8 * (len / 2)) | (uint64_t)p[len - 1] << (8 * (len - 1));
    } else {
        k = 0;
    }
    return __builtin_bswap64(k);
}

/* The number of elements of t[0..n) below x: branch-free (a mispredicted
 * branch per step would cost more than the search); a short table is
 * counted whole, compares that do not wait on each other. */
#define RJ_LINEAR_MAX 8 /* longer tables: halving */
#define RJ_LOWER_BOUND(t, n, x, out)                                  \
    do {                                                              \
        uint32_t n_ = (n), at_ = 0;                                   \
        if (n_ <= RJ_LINEAR_MAX) {                                    \
            for (uint32_t i_ = 0; i_ < n_; i_++)                      \
                at_ += (t)[i_] < (x);                                 \
            (out) = at_;                                              \
            break;                                                    \
        }                                                             \
        while (n_ > 1) {                                              \
            uint32_t half_ = n_ / 2;                                  \
            at_ = (t)[at_ + half_ - 1] < (x) ? at_ + half_ : at_;     \
            n_ -= half_;                                              \
        }                                                             \
        (out) = at_ + (n_ && (t)[at_] < (x));                         \
    } while (0)

/* How many of t[0..n) are below x (not NaN), t padded with +inf to a
 * multiple of 4: four compares at a time (SSE2, every x86-64 has it). */
static inline uint32_t rj_count_below(const double *t, uint32_t n, double x)
{
    uint32_t at = 0;
#if defined(__SSE2__)
    const __m128d xv = _mm_set1_pd(x);
    for (uint32_t i = 0; i < n; i += 4) {
        int m = _mm_movemask_pd(_mm_cmplt_pd(_mm_loadu_pd(t + i), xv)) |
                _mm_movemask_pd(_mm_cmplt_pd(_mm_loadu_pd(t + i + 2), xv)) << 2;
        at += (uint32_t)((0x4332322132212110ULL >> (4 * m)) & 0xF); /* popcount of 4 bits */
    }
#else
    for (uint32_t i = 0; i < n; i++)
        at += t[i] < x;
#endif
    return at;
}

/* The row of g's table for a number (an int, or a double that is not NaN). */
static inline __attribute__((always_inline)) int64_t rj_cells_num_row(const rj_slot_cells *g, const rj_cel *v)
{
    uint32_t lo;
    double x = v->type == RJ_C_INT ? (double)v->n.i : v->n.d;
    if (g->num_d && (v->type == RJ_C_DOUBLE || (v->n.i >= -(1LL << 53) && v->n.i <= (1LL << 53)))) {
        if (g->n_num <= RJ_LINEAR_MAX)
            lo = rj_count_below(g->num_d, g->n_num, x);
        else
            RJ_LOWER_BOUND(g->num_d, g->n_num, x, lo);
        return 2 * (int64_t)lo + (lo < g->n_num && g->num_d[lo] == x);
    }
    uint32_t hi = g->n_num; /* exactly, int against double */
    for (lo = 0; lo < hi;) {
        uint32_t mid = (lo + hi) / 2;
        if (num_cmp(&g->num[mid], v) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 2 * (int64_t)lo + (lo < g->n_num && num_cmp(&g->num[lo], v) == 0);
}

/* Hash of a string for g->str_hash: its first 8 bytes and its length. */
static inline uint32_t rj_cells_str_hash(const uint8_t *p, uint32_t len, uint32_t shift)
{
    return (uint32_t)(((rj_str_key(p, len) ^ len) * 0x9E3779B97F4A7C15ULL) >> shift);
}

/* The row of g's table for a string. */
static inline __attribute__((always_inline)) int64_t rj_cells_str_row(const rj_slot_cells *g, const rj_cel *v)
{
    uint32_t lo, skip = g->str_skip;
    int64_t str0 = 2 * (int64_t)g->n_num + 1;
    if (g->str_hash) { /* equal to a threshold, or in the first string cell: all others alike */
        uint32_t mask = (uint32_t)((1ULL << (64 - g->str_hash_shift)) - 1);
        uint32_t h = rj_cells_str_hash(v->n.ptr, v->len, g->str_hash_shift);
        for (;; h = (h + 1) & mask) {
            uint32_t t = g->str_hash[h];
            if (t == UINT32_MAX)
                return str0;
            if (g->str[t].len == v->len && rj_bytes_equal(g->str[t].n.ptr, v->n.ptr, v->len))
                return str0 + 2 * (int64_t)t + 1;
        }
    }
    if (skip) { /* against the common prefix first: below, above, or within */
        uint32_t m = v->len < skip ? v->len : skip;
        int c = rj_bytes_order(v->n.ptr, g->str[0].n.ptr, m);
        if (c < 0 || (c == 0 && v->len < skip))
            return str0;                          /* below every threshold */
        if (c > 0)
            return str0 + 2 * (int64_t)g->n_str; /* above every threshold */
    }
    uint64_t key = rj_str_key(v->n.ptr + skip, v->len - skip);
    RJ_LOWER_BOUND(g->str_key, g->n_str, key, lo);
    /* Thresholds with the same key: order them by the full bytes. */
    while (lo < g->n_str && g->str_key[lo] == key && bytes_cmp(&g->str[lo], v) < 0)
        lo++;
    return str0 + 2 * (int64_t)lo +
           (lo < g->n_str && g->str_key[lo] == key && bytes_cmp(&g->str[lo], v) == 0);
}

/* The row (cell) of g's table for value v of its field (raw_type: the
 * field's rj_value type, to tell a missing field from other errors), or
 * -1 when the table does not cover the value (then each atom is evaluated
 * on its own). Containers only without member atoms (whose row needs the
 * elements: the VM finds it). */
static inline int64_t rj_cells_row(const rj_slot_cells *g, const rj_cel *v, uint8_t raw_type)
{
    switch (v->type) {
    case RJ_C_INT: return rj_cells_num_row(g, v);
    case RJ_C_DOUBLE: return isnan(v->n.d) ? -1 : rj_cells_num_row(g, v);
    case RJ_C_STR: return rj_cells_str_row(g, v);
    case RJ_C_BOOL: return rj_cells_kind_row(g, v->n.i ? RJ_ROW_TRUE : RJ_ROW_FALSE);
    case RJ_C_NULL: return rj_cells_kind_row(g, RJ_ROW_NULL);
    case RJ_C_LIST: case RJ_C_MAP:
        return g->n_member ? -1 : rj_cells_kind_row(g, RJ_ROW_CONTAINERS);
    default: return raw_type == RJ_V_MISSING ? rj_cells_kind_row(g, RJ_ROW_MISSING) : -1;
    }
}

#endif
