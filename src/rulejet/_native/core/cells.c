/* cells.c: building the per-field atom tables.
 *
 * A rule set tests the same few fields against many constants (ages
 * against a dozen bounds, a country against twenty codes). Evaluating
 * those atoms one by one costs a dispatch and a comparison each; sorting
 * a field's constants once lets one binary search per event settle all
 * of them. Each cell's results are worked out here from the order of the
 * thresholds alone, by the same exact comparisons the VM uses (cel_cmp.h),
 * and the differential tests hold the tables to the interpreter.
 */
#include "cells.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Beyond these, a field's atoms are evaluated one by one as before. */
#define MAX_THRESHOLDS 4096
#define MAX_TABLE_BYTES (1u << 20)
#ifndef RJ_CELLS_MIN_RULES
#define RJ_CELLS_MIN_RULES 4 /* see rj_cells_rule_bits */
#endif

enum { DOM_NUM = 0, DOM_STR = 1 };

static int is_num_const(const rj_cel *k)
{
    return k->type == RJ_C_INT || (k->type == RJ_C_DOUBLE && !isnan(k->n.d));
}

static int is_scalar_const(const rj_cel *k)
{
    return is_num_const(k) || k->type == RJ_C_STR || k->type == RJ_C_BOOL || k->type == RJ_C_NULL;
}

static int in_domain(const rj_cel *k, int dom)
{
    return dom == DOM_NUM ? is_num_const(k) : k->type == RJ_C_STR;
}

/* Can this atom's result be read off its field's cells? */
static int table_atom(const rj_program *p, const rj_atom *a)
{
    if (a->op == RJ_OP_HAS || a->op == RJ_OP_LOAD)
        return 1;
    if (a->arg < 0 || (uint32_t)a->arg >= p->n_consts)
        return 0;
    const rj_cel *k = &p->consts[a->arg];
    switch (a->op) {
    case RJ_OP_F_EQ: case RJ_OP_F_NE:
    case RJ_OP_F_LT: case RJ_OP_F_LE: case RJ_OP_F_GT: case RJ_OP_F_GE:
        return is_scalar_const(k);
    case RJ_OP_F_IN:
        if (k->type != RJ_C_CLIST)
            return 0;
        for (uint32_t i = 0; i < k->len; i++)
            if (!is_scalar_const(&p->consts[k->n.i + i]))
                return 0;
        return 1;
    case RJ_OP_F_STARTS: case RJ_OP_F_CONST_IN:
        return k->type == RJ_C_STR;
    default:
        return 0;
    }
}

static int cmp_dom(const rj_cel *a, const rj_cel *b, int dom)
{
    return dom == DOM_NUM ? num_cmp(a, b) : bytes_cmp(a, b);
}

static int cmp_num_q(const void *a, const void *b) { return num_cmp(a, b); }
static int cmp_str_q(const void *a, const void *b) { return bytes_cmp(a, b); }

/* Sort and drop duplicates (equal by value: 5 and 5.0 are one). */
static uint32_t sort_unique(rj_cel *t, uint32_t n, int dom)
{
    if (!n)
        return 0;
    qsort(t, n, sizeof *t, dom == DOM_NUM ? cmp_num_q : cmp_str_q);
    uint32_t m = 1;
    for (uint32_t i = 1; i < n; i++)
        if (cmp_dom(&t[m - 1], &t[i], dom) != 0)
            t[m++] = t[i];
    return m;
}

/* The index of the threshold equal to k (it is one by construction). */
static uint32_t index_of(const rj_cel *t, uint32_t n, const rj_cel *k, int dom)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (cmp_dom(&t[mid], k, dom) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Where a value in `cell` lies against threshold k: -1, 0 or 1. */
static int cell_sign(const rj_cel *t, uint32_t n, uint32_t cell, const rj_cel *k, int dom)
{
    uint32_t j = cell / 2;
    if (cell & 1)
        return cmp_dom(&t[j], k, dom);
    /* cell 2j holds the values strictly between t[j-1] and t[j] */
    return j <= index_of(t, n, k, dom) ? -1 : 1;
}

/* The smallest string above every string that starts with k: k without
 * its trailing 0xFF bytes, last byte plus one. Returns 0 if there is none
 * (k empty or all 0xFF: every string from k up starts with it). */
static int prefix_bound(const rj_cel *k, uint8_t *buf, rj_cel *out)
{
    uint32_t n = k->len;
    while (n && k->n.ptr[n - 1] == 0xFF)
        n--;
    if (!n)
        return 0;
    memcpy(buf, k->n.ptr, n);
    buf[n - 1]++;
    out->type = RJ_C_STR;
    out->len = n;
    out->n.ptr = buf;
    return 1;
}

/* The result (0, 1, 2 for neither), before negation, of atom a for a
 * value of domain dom in the given cell. */
static uint8_t cell_result(const rj_program *p, const rj_atom *a, const rj_cel *t, uint32_t n,
                           uint32_t cell, int dom)
{
    if (a->op == RJ_OP_HAS)
        return 1;
    if (a->op == RJ_OP_LOAD || a->op == RJ_OP_F_CONST_IN)
        return 2; /* a number or string: not a bool; no `in` on it */
    const rj_cel *k = &p->consts[a->arg];
    /* A value between two thresholds equals no constant (every constant
     * of its domain is a threshold). */
    if (!(cell & 1) && (a->op == RJ_OP_F_EQ || a->op == RJ_OP_F_NE || a->op == RJ_OP_F_IN))
        return a->op == RJ_OP_F_NE;
    switch (a->op) {
    case RJ_OP_F_EQ:
        return in_domain(k, dom) && cell_sign(t, n, cell, k, dom) == 0;
    case RJ_OP_F_NE:
        return !(in_domain(k, dom) && cell_sign(t, n, cell, k, dom) == 0);
    case RJ_OP_F_LT: case RJ_OP_F_LE: case RJ_OP_F_GT: case RJ_OP_F_GE: {
        if (!in_domain(k, dom))
            return 2; /* ordering across unrelated types: an error */
        int s = cell_sign(t, n, cell, k, dom);
        return a->op == RJ_OP_F_LT ? s < 0 : a->op == RJ_OP_F_LE ? s <= 0
             : a->op == RJ_OP_F_GT ? s > 0 : s >= 0;
    }
    case RJ_OP_F_IN:
        for (uint32_t i = 0; i < k->len; i++) {
            const rj_cel *item = &p->consts[k->n.i + i];
            if (in_domain(item, dom) && cell_sign(t, n, cell, item, dom) == 0)
                return 1;
        }
        return 0;
    default: { /* F_STARTS */
        if (dom != DOM_STR)
            return 2; /* startsWith on a number: an error */
        /* A point starts with k or not. A gap (t[j-1], t[j]) lies wholly
         * inside [k, bound(k)) iff t[j-1] starts with k: the bound is a
         * threshold too, so t[j] cannot pass it. */
        uint32_t j = cell / 2;
        const rj_cel *s = (cell & 1) ? &t[j] : j ? &t[j - 1] : NULL;
        return s && s->len >= k->len && (!k->len || !memcmp(s->n.ptr, k->n.ptr, k->len));
    }
    }
}

/* The result (0, 1, 2 for neither), before negation, of atom a for a
 * value of one of the kinds RJ_ROW_* (containers: with the subset `mask`
 * of g's member strings as elements), as the VM's eq3, order3 and in3
 * judge it: a missing field is an error to all but has(); a container
 * equals no scalar and has no order; only a bool is true or false. */
static uint8_t kind_result(const rj_program *p, const rj_slot_cells *g, const rj_atom *a,
                           uint32_t kind, uint32_t mask)
{
    if (a->op == RJ_OP_HAS)
        return kind != RJ_ROW_MISSING;
    if (kind == RJ_ROW_MISSING)
        return 2;
    int is_bool = kind == RJ_ROW_FALSE || kind == RJ_ROW_TRUE;
    if (a->op == RJ_OP_LOAD)
        return is_bool ? kind == RJ_ROW_TRUE : 2;
    const rj_cel *k = &p->consts[a->arg];
    if (a->op == RJ_OP_F_CONST_IN) /* bit j of the subset: member[j] is an element */
        return kind == RJ_ROW_CONTAINERS ? (mask >> index_of(g->member, g->n_member, k, DOM_STR)) & 1
                                         : 2;
    /* Does the value equal scalar constant c? (Bools and null only equal
     * their own kind.) */
#define RJ_KIND_EQ(c)                                                                  \
    ((c)->type == RJ_C_NULL ? kind == RJ_ROW_NULL                                      \
     : (c)->type == RJ_C_BOOL ? is_bool && ((c)->n.i != 0) == (kind == RJ_ROW_TRUE) : 0)
    switch (a->op) {
    case RJ_OP_F_EQ: return RJ_KIND_EQ(k);
    case RJ_OP_F_NE: return !RJ_KIND_EQ(k);
    case RJ_OP_F_IN:
        for (uint32_t i = 0; i < k->len; i++)
            if (RJ_KIND_EQ(&p->consts[k->n.i + i]))
                return 1;
        return 0;
    case RJ_OP_F_LT: case RJ_OP_F_LE: case RJ_OP_F_GT: case RJ_OP_F_GE: {
        if (!is_bool || k->type != RJ_C_BOOL)
            return 2; /* no order across kinds, nor for null and containers */
        int v = kind == RJ_ROW_TRUE, c = (v > (k->n.i != 0)) - (v < (k->n.i != 0));
        return a->op == RJ_OP_F_LT ? c < 0 : a->op == RJ_OP_F_LE ? c <= 0
             : a->op == RJ_OP_F_GT ? c > 0 : c >= 0;
    }
    default: /* F_STARTS: strings only */
        return 2;
    }
#undef RJ_KIND_EQ
}

/* Integer thresholds spanning at most this many integers (with one below
 * and one above) get a row per integer: 16 KiB at most. */
#define RJ_INT_ROWS_MAX 4096

/* g->int_rows for groups whose thresholds are all integers (an int, or a
 * double with an integral value) within RJ_INT_ROWS_MAX of each other:
 * each integer's row is what rj_cells_num_row gives it, so the table can
 * only agree with the search. */
static int build_int_rows(rj_slot_cells *g)
{
    if (!g->n_num)
        return 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (uint32_t i = 0; i < g->n_num; i++) {
        const rj_cel *t = &g->num[i];
        int64_t v;
        if (t->type == RJ_C_INT)
            v = t->n.i;
        else if (t->n.d >= -9.0e15 && t->n.d <= 9.0e15 && t->n.d == (double)(int64_t)t->n.d)
            v = (int64_t)t->n.d;
        else
            return 0;
        if (v < lo)
            lo = v;
        if (v > hi)
            hi = v;
    }
    /* One integer below the lowest and one above the highest: values
     * further out fall back to the search (they share those rows). */
    if (lo == INT64_MIN || hi == INT64_MAX || (uint64_t)hi - (uint64_t)lo >= RJ_INT_ROWS_MAX - 2)
        return 0;
    lo -= 1;
    uint64_t span = (uint64_t)(hi + 1 - lo) + 1;
    g->int_rows = malloc(span * sizeof(uint32_t));
    if (!g->int_rows)
        return -ENOMEM;
    for (uint64_t i = 0; i < span; i++) {
        rj_cel v = {.type = RJ_C_INT};
        v.n.i = lo + (int64_t)i;
        g->int_rows[i] = (uint32_t)rj_cells_num_row(g, &v);
    }
    g->int_lo = lo;
    g->int_span = span;
    return 0;
}

/* g->unit_rows for doubles: thresholds within RJ_INT_ROWS_MAX of each
 * other (as numbers; exact as doubles, so num_d is set). A unit interval
 * with no threshold in it lies inside one cell, whose row the search gives
 * its midpoint; an interval holding a threshold is left to the search. */
static int build_unit_rows(rj_slot_cells *g)
{
    if (!g->n_num || !g->num_d)
        return 0;
    double lo = floor(g->num_d[0]), hi = floor(g->num_d[g->n_num - 1]) + 1;
    if (!(lo >= -9.0e15 && hi <= 9.0e15) || hi - lo > RJ_INT_ROWS_MAX)
        return 0;
    size_t span = (size_t)(hi - lo);
    /* One more, never a row: x - lo may round up to span for x just
     * below hi (a value one interval up: there, the search decides). */
    g->unit_rows = malloc((span + 1) * sizeof(uint32_t));
    if (!g->unit_rows)
        return -ENOMEM;
    g->unit_rows[span] = UINT32_MAX;
    uint32_t t = 0; /* the first threshold >= the interval's start */
    for (size_t i = 0; i < span; i++) {
        double k = lo + (double)i;
        while (t < g->n_num && g->num_d[t] < k)
            t++;
        if (t < g->n_num && g->num_d[t] < k + 1) {
            g->unit_rows[i] = UINT32_MAX;
            continue;
        }
        rj_cel v = {.type = RJ_C_DOUBLE};
        v.n.d = k + 0.5;
        g->unit_rows[i] = (uint32_t)rj_cells_num_row(g, &v);
    }
    g->unit_lo = lo;
    g->unit_hi = hi;
    return 0;
}

static void free_group(rj_slot_cells *g)
{
    free(g->num);
    free(g->str);
    free(g->num_d);
    free(g->int_rows);
    free(g->unit_rows);
    free(g->str_key);
    free(g->str_hash);
    free(g->rows);
    free(g->bits);
    free(g->involved);
    free(g->succ_bytes);
    free(g->member);
    memset(g, 0, sizeof *g);
}

/* Does an atom of g order strings (a comparison with a string, or
 * startsWith)? Then string rows depend on where a value falls between
 * thresholds, not only on which one it equals. */
static int orders_strings(const rj_program *p, const rj_slot_cells *g)
{
    for (uint32_t i = 0; i < g->n_atoms; i++) {
        const rj_atom *a = &p->atoms[g->first_atom + i];
        if (a->op == RJ_OP_F_STARTS)
            return 1;
        if (a->op >= RJ_OP_F_LT && a->op <= RJ_OP_F_GE && p->consts[a->arg].type == RJ_C_STR)
            return 1;
    }
    return 0;
}

static int build_str_hash(rj_slot_cells *g)
{
    uint32_t bits = 2;
    while ((1u << bits) < 2 * g->n_str)
        bits++;
    g->str_hash = malloc(sizeof(uint32_t) << bits);
    if (!g->str_hash)
        return -ENOMEM;
    memset(g->str_hash, 0xff, sizeof(uint32_t) << bits);
    g->str_hash_shift = 64 - bits;
    uint32_t mask = (1u << bits) - 1;
    for (uint32_t t = 0; t < g->n_str; t++) {
        uint32_t h = rj_cells_str_hash(g->str[t].n.ptr, g->str[t].len, g->str_hash_shift);
        while (g->str_hash[h] != UINT32_MAX)
            h = (h + 1) & mask;
        g->str_hash[h] = t;
    }
    return 0;
}

/* Build group g over atoms[first .. first + count) (all on one slot).
 * Returns 0, -ENOMEM, or 1 when the table would be too large. */
static int build_group(const rj_program *p, rj_slot_cells *g)
{
    const rj_atom *atoms = p->atoms + g->first_atom;
    /* Room for every constant (a list's items each), plus startsWith bounds. */
    size_t room = 0, succ_len = 0;
    for (uint32_t i = 0; i < g->n_atoms; i++) {
        if (atoms[i].op == RJ_OP_HAS || atoms[i].op == RJ_OP_LOAD)
            continue;
        const rj_cel *k = &p->consts[atoms[i].arg];
        room += k->type == RJ_C_CLIST ? k->len : 2;
        succ_len += atoms[i].op == RJ_OP_F_STARTS ? k->len : 0;
    }
    if (room > 2 * MAX_THRESHOLDS)
        return 1;
    g->num = malloc((room ? room : 1) * sizeof(rj_cel));
    g->str = malloc((room ? room : 1) * sizeof(rj_cel));
    g->succ_bytes = malloc(succ_len ? succ_len : 1);
    g->member = malloc((room ? room : 1) * sizeof(rj_cel));
    if (!g->num || !g->str || !g->succ_bytes || !g->member)
        return -ENOMEM;
    uint32_t nn = 0, ns = 0, used = 0;
    for (uint32_t i = 0; i < g->n_atoms; i++) {
        const rj_atom *a = &atoms[i];
        if (a->op == RJ_OP_HAS || a->op == RJ_OP_LOAD)
            continue;
        const rj_cel *k = &p->consts[a->arg];
        if (a->op == RJ_OP_F_CONST_IN) { /* an element, not a threshold */
            g->member[g->n_member++] = *k;
            continue;
        }
        uint32_t first = k->type == RJ_C_CLIST ? (uint32_t)k->n.i : (uint32_t)a->arg;
        uint32_t count = k->type == RJ_C_CLIST ? k->len : 1;
        for (uint32_t j = 0; j < count; j++) {
            const rj_cel *c = &p->consts[first + j];
            if (is_num_const(c))
                g->num[nn++] = *c;
            else if (c->type == RJ_C_STR)
                g->str[ns++] = *c;
        }
        if (a->op == RJ_OP_F_STARTS && prefix_bound(k, g->succ_bytes + used, &g->str[ns])) {
            used += g->str[ns].len;
            ns++;
        }
    }
    g->n_num = sort_unique(g->num, nn, DOM_NUM);
    g->n_str = sort_unique(g->str, ns, DOM_STR);
    g->n_member = sort_unique(g->member, g->n_member, DOM_STR);
    if (g->n_member > RJ_CELLS_MAX_MEMBERS)
        return 1;
    /* Padded to whole steps of rj_count_below with +inf (below nothing). */
    g->num_d = malloc(((g->n_num + 3) / 4 * 4 + 4) * sizeof(double));
    g->str_key = malloc((g->n_str ? g->n_str : 1) * sizeof(uint64_t));
    if (!g->num_d || !g->str_key)
        return -ENOMEM;
    for (uint32_t i = 0; i < g->n_num; i++) {
        const rj_cel *t = &g->num[i];
        if (t->type == RJ_C_INT && (t->n.i < -(1LL << 53) || t->n.i > (1LL << 53))) {
            free(g->num_d); /* not exact as a double: search with num_cmp */
            g->num_d = NULL;
            break;
        }
        g->num_d[i] = t->type == RJ_C_INT ? (double)t->n.i : t->n.d;
    }
    for (uint32_t i = g->n_num; g->num_d && i < (g->n_num + 3) / 4 * 4 + 4; i++)
        g->num_d[i] = INFINITY;
    if (build_int_rows(g) < 0 || build_unit_rows(g) < 0)
        return -ENOMEM;
    /* Keys from the bytes after the thresholds' common prefix: timestamps
     * or paths that all begin alike would otherwise share one key. */
    g->str_skip = g->n_str ? g->str[0].len : 0;
    for (uint32_t i = 1; i < g->n_str; i++) {
        uint32_t k = 0;
        while (k < g->str_skip && k < g->str[i].len && g->str[i].n.ptr[k] == g->str[0].n.ptr[k])
            k++;
        g->str_skip = k;
    }
    for (uint32_t i = 0; i < g->n_str; i++)
        g->str_key[i] = rj_str_key(g->str[i].n.ptr + g->str_skip, g->str[i].len - g->str_skip);
    if (g->n_str && !orders_strings(p, g) && build_str_hash(g) < 0)
        return -ENOMEM;
    size_t num_cells = 2 * (size_t)g->n_num + 1, str_cells = 2 * (size_t)g->n_str + 1;
    size_t n_rows = rj_cells_n_rows(g), kinds = num_cells + str_cells;
    if (n_rows * (g->n_atoms + RJ_CELL_SETS * sizeof(uint64_t) * (size_t)p->n_words) >
        MAX_TABLE_BYTES)
        return 1;
    g->rows = malloc(n_rows * g->n_atoms);
    if (!g->rows)
        return -ENOMEM;
    for (uint32_t i = 0; i < g->n_atoms; i++) {
        const rj_atom *a = &atoms[i];
        for (size_t row = 0; row < n_rows; row++) {
            uint8_t r;
            if (row < num_cells)
                r = cell_result(p, a, g->num, g->n_num, (uint32_t)row, DOM_NUM);
            else if (row < kinds)
                r = cell_result(p, a, g->str, g->n_str, (uint32_t)(row - num_cells), DOM_STR);
            else if (row < kinds + RJ_ROW_CONTAINERS)
                r = kind_result(p, g, a, (uint32_t)(row - kinds), 0);
            else
                r = kind_result(p, g, a, RJ_ROW_CONTAINERS,
                                (uint32_t)(row - kinds - RJ_ROW_CONTAINERS));
            g->rows[row * g->n_atoms + i] = r == 2 ? 2 : (uint8_t)(r ^ (a->negate != 0));
        }
    }
    return 0;
}

/* Does rule r carry its guard's test (field == the one constant, or field
 * in exactly the guard's list) as a conjunct atom in group gi? */
static int guard_in_cells(const rj_program *p, const rj_rule_code *rc, uint32_t gi)
{
    /* Only a lone guard is a conjunct (several are one per disjunct). */
    if ((rc->shape != RJ_SHAPE_AND && rc->shape != RJ_SHAPE_GENERAL) || rc->n_guards != 1 ||
        rc->guards[0].kind != RJ_GUARD_IN)
        return 0;
    for (int k = 0; k < RJ_MAX_ATOMS && rc->pre[k] >= 0; k++) {
        const rj_atom *a = &p->atoms[rc->pre[k]];
        if (a->cells != (int32_t)gi || a->negate)
            continue;
        const rj_cel *want = &p->consts[rc->guards[0].off], *have = &p->consts[a->arg];
        uint32_t n = rc->guards[0].len;
        if (a->op == RJ_OP_F_IN && have->type == RJ_C_CLIST && have->len == n) {
            have = &p->consts[have->n.i];
        } else if (!(a->op == RJ_OP_F_EQ && n == 1)) {
            continue;
        }
        uint32_t i = 0;
        while (i < n && have[i].type == want[i].type &&
               (is_num_const(&have[i]) || have[i].type == RJ_C_STR) &&
               cmp_dom(&have[i], &want[i], have[i].type == RJ_C_STR ? DOM_STR : DOM_NUM) == 0)
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* A guard whose every rule carries its test as an atom in its field's
 * table is redundant: a rule whose guard fails has a false conjunct, so
 * the possible bits rule it out. Such guards are skipped, their rules
 * counted unguarded, which saves a hash lookup per field and event. */
static void drop_covered_guards(rj_program *p)
{
    for (uint32_t gg = 0; gg < p->n_groups; gg++) {
        rj_guard_group *G = &p->groups[gg];
        if (G->kind != RJ_GUARD_IN || G->disjunct)
            continue;
        uint32_t gi = 0;
        while (gi < p->n_cells && !(p->cells[gi].slot == G->slot && p->cells[gi].rows))
            gi++;
        if (gi == p->n_cells)
            continue;
        uint32_t i = 0;
        while (i < G->n_rules && guard_in_cells(p, &p->rules[G->rules[i]], gi))
            i++;
        if (i < G->n_rules)
            continue;
        G->in_cells = 1;
        for (i = 0; i < G->n_rules; i++)
            p->unguarded[G->rules[i] / 64] |= 1ULL << (G->rules[i] % 64);
    }
    /* A rule the cells decide outright needs no guard at all: its bits
     * say false wherever a guard would have skipped it. Unguarded, it
     * leaves the groups (the disjunct ones of `a == 1 || b == 2` rules
     * included); a group left without rules is not visited. A hashed
     * group keeps its table: finding such a rule there again is
     * harmless. */
    uint64_t W = p->n_words;
    for (uint32_t w = 0; w < W; w++)
        p->unguarded[w] |= p->table_and[w] | p->table_or[w];
#define RJ_DECIDED(r) ((p->table_and[(r) / 64] | p->table_or[(r) / 64]) >> ((r) % 64) & 1)
    for (uint32_t gg = 0; gg < p->n_groups; gg++) {
        rj_guard_group *G = &p->groups[gg];
        if (G->in_cells)
            continue;
        uint32_t n = 0;
        for (uint32_t i = 0; i < G->n_rules; i++)
            if (!RJ_DECIDED(G->rules[i]))
                G->rules[n++] = G->rules[i];
        G->n_rules = n;
        n = 0;
        for (uint32_t i = 0; i < G->n_pairs; i++)
            if (!RJ_DECIDED(G->pair_rule[i])) {
                G->pair_const[n] = G->pair_const[i];
                G->pair_rule[n++] = G->pair_rule[i];
            }
        G->n_pairs = n;
        if (!G->n_rules)
            G->in_cells = 1;
    }
#undef RJ_DECIDED
}

/* The rules with an atom in group gi (a conjunct of an AND or GENERAL
 * rule, a disjunct of an OR rule). */
static uint32_t rules_involved(const rj_program *p, uint32_t gi)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const rj_rule_code *rc = &p->rules[r];
        if (rc->shape == RJ_SHAPE_TREE)
            continue;
        for (int k = 0; k < RJ_MAX_ATOMS && rc->pre[k] >= 0; k++) {
            if (p->atoms[rc->pre[k]].cells == (int32_t)gi) {
                n++;
                break;
            }
        }
    }
    return n;
}

int rj_cells_rule_bits(rj_program *p)
{
    uint32_t W = p->n_words;
    p->table_and = calloc(2 * (size_t)(W ? W : 1), sizeof(uint64_t));
    if (!p->table_and)
        return -ENOMEM;
    p->table_or = p->table_and + (W ? W : 1);
    /* Every table is searched for every event; one that settles only a
     * few rules costs more than evaluating their atoms when (and if) the
     * rules get that far. Those atoms go back to being evaluated alone. */
    for (uint32_t gi = 0; gi < p->n_cells; gi++) {
        rj_slot_cells *g = &p->cells[gi];
        if (g->rows && rules_involved(p, gi) < RJ_CELLS_MIN_RULES) {
            for (uint32_t i = 0; i < g->n_atoms; i++)
                p->atoms[g->first_atom + i].cells = -1;
            free(g->rows);
            g->rows = NULL;
        }
    }
    p->n_live_cells = 0;
    for (uint32_t gi = 0; gi < p->n_cells; gi++) {
        rj_slot_cells *g = &p->cells[gi];
        if (!g->rows)
            continue;
        p->n_live_cells++;
        size_t n_rows = rj_cells_n_rows(g);
        g->bits = malloc(n_rows * RJ_CELL_SETS * W * sizeof(uint64_t));
        g->involved = calloc(W ? W : 1, sizeof(uint64_t));
        if (!g->bits || !g->involved)
            return -ENOMEM;
        for (size_t row = 0; row < n_rows; row++)
            rj_row_bits_start(g->bits + row * RJ_CELL_SETS * W, W);
    }
    /* A rule's atoms are necessary conjuncts for AND and GENERAL shapes
     * (one false atom makes the rule false, whatever else it holds), and
     * its disjuncts for the OR shape (one true atom makes it true). */
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const rj_rule_code *rc = &p->rules[r];
        int is_or = rc->shape == RJ_SHAPE_OR;
        if (rc->shape != RJ_SHAPE_AND && rc->shape != RJ_SHAPE_GENERAL && !is_or)
            continue;
        int all_in_cells = rc->shape != RJ_SHAPE_GENERAL;
        uint64_t bit = 1ULL << (r % 64);
        for (int k = 0; k < RJ_MAX_ATOMS && rc->pre[k] >= 0; k++) {
            const rj_atom *a = &p->atoms[rc->pre[k]];
            if (a->cells < 0) {
                all_in_cells = 0;
                continue;
            }
            rj_slot_cells *g = &p->cells[a->cells];
            uint32_t i = (uint32_t)rc->pre[k] - g->first_atom;
            size_t n_rows = rj_cells_n_rows(g);
            g->involved[r / 64] |= bit;
            for (size_t row = 0; row < n_rows; row++)
                rj_row_bits_narrow(g->bits + row * RJ_CELL_SETS * W, W, r,
                                   g->rows[row * g->n_atoms + i], is_or);
        }
        if (all_in_cells)
            (is_or ? p->table_or : p->table_and)[r / 64] |= bit;
    }
    drop_covered_guards(p);
    return 0;
}

void rj_cells_free(rj_program *p)
{
    for (uint32_t g = 0; p->cells && g < p->n_cells; g++)
        free_group(&p->cells[g]);
    free(p->cells);
    free(p->table_and); /* table_or shares it */
    p->cells = NULL;
    p->table_and = p->table_or = NULL;
    p->n_cells = 0;
    p->n_live_cells = 0;
}

int rj_cells_build(rj_program *p)
{
    uint32_t n = p->n_atoms;
    rj_atom *sorted = malloc((n ? n : 1) * sizeof(rj_atom));
    uint32_t *perm = malloc((n ? n : 1) * sizeof(uint32_t));
    uint8_t *placed = calloc(n ? n : 1, 1);
    p->cells = calloc(n ? n : 1, sizeof(rj_slot_cells));
    if (!sorted || !perm || !placed || !p->cells) {
        free(sorted);
        free(perm);
        free(placed);
        rj_cells_free(p);
        return -ENOMEM;
    }
    /* Table atoms grouped by slot (groups in order of first use), then
     * the rest, each keeping its relative order. */
    uint32_t out = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (placed[i] || !table_atom(p, &p->atoms[i]))
            continue;
        rj_slot_cells *g = &p->cells[p->n_cells];
        g->slot = p->atoms[i].a;
        g->first_atom = out;
        for (uint32_t j = i; j < n; j++) {
            if (!placed[j] && p->atoms[j].a == g->slot && table_atom(p, &p->atoms[j])) {
                placed[j] = 1;
                perm[j] = out;
                sorted[out] = p->atoms[j];
                sorted[out++].cells = (int32_t)p->n_cells;
            }
        }
        g->n_atoms = out - g->first_atom;
        p->n_cells++;

    }
    for (uint32_t i = 0; i < n; i++) {
        if (!placed[i]) {
            perm[i] = out;
            sorted[out] = p->atoms[i];
            sorted[out++].cells = -1;
        }
    }
    memcpy(p->atoms, sorted, n * sizeof(rj_atom));

    for (uint32_t r = 0; r < p->n_rules; r++)
        for (int a = 0; a < RJ_MAX_ATOMS; a++)
            if (p->rules[r].pre[a] >= 0)
                p->rules[r].pre[a] = (int32_t)perm[p->rules[r].pre[a]];
    for (uint32_t i = 0; i < p->n_tree; i++)
        if (p->tree[i] >= 0)
            p->tree[i] = (int32_t)perm[p->tree[i]];
    free(sorted);
    free(perm);
    free(placed);
    for (uint32_t g = 0; g < p->n_cells; g++) {
        int rc = build_group(p, &p->cells[g]);
        if (rc < 0) {
            rj_cells_free(p);
            return rc;
        }
        if (rc > 0) { /* too large: its atoms go back to one by one */
            for (uint32_t i = 0; i < p->cells[g].n_atoms; i++)
                p->atoms[p->cells[g].first_atom + i].cells = -1;
            uint32_t slot = p->cells[g].slot, first = p->cells[g].first_atom,
                     count = p->cells[g].n_atoms;
            free_group(&p->cells[g]);
            p->cells[g].slot = slot;
            p->cells[g].first_atom = first;
            p->cells[g].n_atoms = count;
        }
    }
    return 0;
}
