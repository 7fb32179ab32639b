/* vm.c: evaluating compiled rules over one event's extracted values.
 *
 * Semantics mirror rulejet/_ref/cel.py exactly (the differential tests
 * hold the two together): errors are values, && and || absorb an error
 * when the other side decides, equality across types is false, numbers
 * compare by exact value across int and double, ordering across unrelated
 * types is an error. Raw JSON lists and objects read from an event are
 * walked in place by a small scalar reader (raw_*), which treats anything
 * malformed as an error value, since skipped subtrees were not validated.
 */
#include "vm.h"
#include "json_scalar.h"
#include "cel_cmp.h"
#include "cells.h"
#include "vmemo.h"
#include "dispatch.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH_BLOCK 65536
/* The interpreter's hot helpers are small; inlining them into run() and
 * the atom loop removes a call and a 24-byte copy per operand. */
#define RJ_HOT __attribute__((always_inline))

/* ---- locales: fixed ones, so results never depend on the process's ---- */

static locale_t c_locale, utf8_locale;
static pthread_once_t locales_once = PTHREAD_ONCE_INIT;

static void make_locales(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    utf8_locale = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    if (!utf8_locale)
        utf8_locale = newlocale(LC_ALL_MASK, "en_US.UTF-8", (locale_t)0);
}

locale_t rj_c_locale(void)
{
    pthread_once(&locales_once, make_locales);
    return c_locale;
}

locale_t rj_utf8_locale(void)
{
    pthread_once(&locales_once, make_locales);
    return utf8_locale;
}

/* ---- scratch ---- */

/* Computed strings (unescaped values, concatenations, lowerAscii) come
 * from an arena that is reset per event: after the first events have
 * grown it to the largest need, the loop allocates nothing. */
static uint8_t *scratch_alloc(rj_vm *vm, size_t n)
{
    return rj_arena_alloc(&vm->scratch, n, 1, NULL);
}

static void scratch_rewind(rj_vm *vm)
{
    /* Only touch the arena when the event used it (the reset unmaps any
     * extra chunks, which a cheap check keeps off the common path). */
    if (atomic_load_explicit(&vm->scratch.in_use, memory_order_relaxed))
        rj_arena_reset(&vm->scratch);
}

int rj_vm_init(rj_vm *vm, const rj_program *prog)
{
    memset(vm, 0, sizeof *vm);
    vm->prog = prog;
    vm->kernel = rj_kernel_active();
    uint32_t slots = prog->ps->n_slots ? prog->ps->n_slots : 1;
    vm->stack = malloc((size_t)(prog->max_stack + 2) * sizeof(rj_cel));
    vm->slot_cache = malloc(slots * sizeof(rj_cel));
    vm->slot_gen = calloc(slots, sizeof(uint32_t));
    vm->active = calloc(prog->n_words ? prog->n_words : 1, sizeof(uint64_t));
    vm->atom_val = malloc(prog->n_atoms ? prog->n_atoms : 1);
    vm->atom_gen = calloc(prog->n_atoms ? prog->n_atoms : 1, sizeof(uint32_t));
    vm->cell_row = calloc(prog->n_cells ? prog->n_cells : 1, sizeof(int32_t));
    vm->arr = calloc(slots, sizeof *vm->arr);
    vm->arr_el = malloc(RJ_ARR_CAP * sizeof *vm->arr_el);
    size_t words = prog->n_words ? prog->n_words : 1;
    vm->possible = malloc((RJ_CELL_SETS + 1) * words * sizeof(uint64_t));
    if (vm->possible) {
        vm->satisfied = vm->possible + words;
        vm->any_true = vm->possible + 2 * words;
        vm->all_false = vm->possible + 3 * words;
        vm->undecided = vm->possible + 4 * words;
    }
    const char *memo_env = getenv("RULEJET_REGEX_MEMO");
    vm->re_memo_wanted = prog->n_regex && !(memo_env && strcmp(memo_env, "0") == 0);
    const char *vmemo_env = getenv("RULEJET_VALUE_MEMO");
    vm->vmemo_wanted = prog->n_memos && !(vmemo_env && strcmp(vmemo_env, "0") == 0);
    int arena_rc = rj_arena_init(&vm->scratch, 65536);
    if (arena_rc == 0)
        vm->scratch_ready = 1;
    if (!vm->stack || !vm->slot_cache || !vm->slot_gen || !vm->active || !vm->atom_val ||
        !vm->atom_gen || !vm->cell_row || !vm->possible || !vm->arr || !vm->arr_el ||
        arena_rc < 0) {
        rj_vm_free(vm);
        return -ENOMEM;
    }
    return 0;
}

void rj_vm_free(rj_vm *vm)
{
    free(vm->stack);
    free(vm->slot_cache);
    free(vm->slot_gen);
    free(vm->active);
    free(vm->atom_val);
    free(vm->atom_gen);
    free(vm->cell_row);
    free(vm->possible);
    free(vm->arr);
    free(vm->arr_el);
    free(vm->re_memo);
    free(vm->re_use);
    if (vm->prog)
        rj_vmemo_delete(vm->vmemo, vm->prog);
    if (vm->scratch_ready)
        rj_arena_destroy(&vm->scratch);
    memset(vm, 0, sizeof *vm);
}

/* ---- values ---- */

static inline RJ_HOT rj_cel err(uint32_t code)
{
    rj_cel v = {0};
    v.type = RJ_C_ERR;
    v.len = code;
    return v;
}

static inline RJ_HOT rj_cel boolean(int b)
{
    rj_cel v = {0};
    v.type = RJ_C_BOOL;
    v.n.i = b != 0;
    return v;
}

static inline RJ_HOT rj_cel str(const uint8_t *p, size_t n)
{
    rj_cel v = {0};
    v.type = RJ_C_STR;
    v.n.ptr = p;
    v.len = (uint32_t)n;
    return v;
}

/* A value written as two 8-byte words. Built field by field (or through a
 * returned struct, which GCC assembles on the stack) and then read back
 * whole, a fresh value stalls store-to-load forwarding: a wide load that
 * spans several narrow stores must wait for them to retire. */
static inline RJ_HOT void cel_set(rj_cel *c, uint8_t type, uint32_t len, uint64_t bits)
{
    uint64_t w0 = type | (uint64_t)len << 32;
    memcpy(c, &w0, 8);
    memcpy((uint8_t *)c + 8, &bits, 8);
}

static inline RJ_HOT void cel_copy(rj_cel *d, const rj_cel *s)
{
    uint64_t w0, w1;
    memcpy(&w0, s, 8);
    memcpy(&w1, (const uint8_t *)s + 8, 8);
    memcpy(d, &w0, 8);
    memcpy((uint8_t *)d + 8, &w1, 8);
}

static inline RJ_HOT int is_num(const rj_cel *v) { return v->type == RJ_C_INT || v->type == RJ_C_DOUBLE; }
static inline RJ_HOT int is_listish(const rj_cel *v) { return v->type == RJ_C_LIST || v->type == RJ_C_CLIST; }

/* A string span from the event as a CEL string: unescaped into scratch
 * if it has escapes. */
static rj_cel event_string(rj_vm *vm, const uint8_t *p, size_t n, int escaped)
{
    if (!escaped)
        return str(p, n);
    uint8_t *out = scratch_alloc(vm, n ? n : 1);
    if (!out)
        return err(RJ_CE_NOMEM);
    return str(out, rj_unescape(p, n, out));
}

/* ---- raw JSON reader (for lists and objects read from events) ---- */

static const uint8_t *raw_ws(const uint8_t *p, const uint8_t *e)
{
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* p after the opening quote; returns the closing quote or NULL. */
static const uint8_t *raw_string_end(const uint8_t *p, const uint8_t *e, int *escaped)
{
    for (; p < e; p++) {
        if (*p == '"')
            return p;
        if (*p == '\\') {
            *escaped = 1;
            if (++p >= e)
                return NULL;
            if (*p == 'u') {
                if (e - p < 5)
                    return NULL;
                for (int i = 1; i <= 4; i++) {
                    uint8_t c = p[i] | 0x20;
                    if (!((p[i] >= '0' && p[i] <= '9') || (c >= 'a' && c <= 'f')))
                        return NULL;
                }
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        } else if (*p < 0x20) {
            return NULL;
        }
    }
    return NULL;
}

static const uint8_t *raw_container_end(const uint8_t *p, const uint8_t *e)
{
    int64_t depth = 0;
    for (; p < e; p++) {
        if (*p == '"') {
            int esc = 0;
            p = raw_string_end(p + 1, e, &esc);
            if (!p)
                return NULL;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
    }
    return NULL;
}

static const uint8_t *raw_number(const uint8_t *p, const uint8_t *e, rj_cel *out)
{
    int is_int;
    const uint8_t *bad, *s = p;
    const char *why;
    p = rj_number_scan(p, e, &is_int, &bad, &why);
    if (!p)
        return NULL;
    memset(out, 0, sizeof *out);
    if (!is_int) {
        out->type = RJ_C_DOUBLE;
        out->n.d = rj_number_to_double(s, (size_t)(p - s));
    } else if (rj_number_int64(s, p, &out->n.i)) {
        out->type = RJ_C_INT;
    } else {
        *out = err(RJ_CE_RANGE);
    }
    return p;
}

/* Read one value at p into *out; returns the end, or NULL if malformed. */
static const uint8_t *raw_value(rj_vm *vm, const uint8_t *p, const uint8_t *e, rj_cel *out)
{
    memset(out, 0, sizeof *out);
    if (p >= e)
        return NULL;
    switch (*p) {
    case '"': {
        int esc = 0;
        const uint8_t *q = raw_string_end(p + 1, e, &esc);
        if (!q)
            return NULL;
        *out = event_string(vm, p + 1, (size_t)(q - p - 1), esc);
        return q + 1;
    }
    case '{':
    case '[': {
        const uint8_t *q = raw_container_end(p, e);
        if (!q)
            return NULL;
        out->type = *p == '{' ? RJ_C_MAP : RJ_C_LIST;
        out->n.ptr = p;
        out->len = (uint32_t)(q - p);
        return q;
    }
    case 't':
        if (e - p >= 4 && !memcmp(p, "true", 4)) {
            *out = boolean(1);
            return p + 4;
        }
        return NULL;
    case 'f':
        if (e - p >= 5 && !memcmp(p, "false", 5)) {
            *out = boolean(0);
            return p + 5;
        }
        return NULL;
    case 'n':
        if (e - p >= 4 && !memcmp(p, "null", 4)) {
            out->type = RJ_C_NULL;
            return p + 4;
        }
        return NULL;
    default:
        return raw_number(p, e, out);
    }
}

/* Walk a raw array or object. For arrays fn sees each element; for
 * objects each key (as a string value). fn returns nonzero to stop. The
 * walk returns 1 if stopped, 0 at the end, -1 if the text is malformed. */
typedef int (*raw_visit)(rj_vm *vm, const rj_cel *item, void *ctx);

/* Whether an array or object the scan returned whole (it checked only
 * brackets and strings) is sound JSON: a rule must not read a match out
 * of malformed text. */
static int raw_sound(const rj_vm *vm, const rj_cel *c)
{
    rj_json_err err;
    return vm->kernel->json_validate(c->n.ptr, 0, c->len, &err) == 0;
}

static int raw_walk(rj_vm *vm, const rj_cel *c, raw_visit fn, void *ctx)
{
    if (!raw_sound(vm, c))
        return -1;
    const uint8_t *p = c->n.ptr, *e = c->n.ptr + c->len;
    int obj = c->type == RJ_C_MAP;
    p = raw_ws(p + 1, e);
    if (p < e && *p == (obj ? '}' : ']'))
        return 0;
    for (;;) {
        rj_cel item, val;
        if (obj) {
            if (p >= e || *p != '"')
                return -1;
            p = raw_value(vm, p, e, &item);
            if (!p)
                return -1;
            p = raw_ws(p, e);
            if (p >= e || *p != ':')
                return -1;
            p = raw_value(vm, raw_ws(p + 1, e), e, &val);
        } else {
            p = raw_value(vm, p, e, &item);
        }
        if (!p)
            return -1;
        if (fn && fn(vm, &item, ctx))
            return 1;
        p = raw_ws(p, e);
        if (p < e && *p == ',') {
            p = raw_ws(p + 1, e);
            continue;
        }
        if (p < e && *p == (obj ? '}' : ']'))
            return 0;
        return -1;
    }
}

/* ---- comparisons ---- */

/* Comparison outcomes: 0/1 for false/true, or why the result is an error
 * (an operand's own error passes through). Returning small ints instead
 * of values keeps results in registers: building a 16-byte value in
 * memory field by field and copying it whole stalls store forwarding. */
enum {
    RJ_R_ERR_A = -1,
    RJ_R_ERR_B = -2,
    RJ_R_UNSUP = -3,
    RJ_R_OVERLOAD = -4,
    RJ_R_BADJSON = -5,
    RJ_R_RANGE = -6
};

/* CEL equality. */
static inline RJ_HOT int eq3(const rj_cel *a, const rj_cel *b)
{
    if (a->type == RJ_C_ERR)
        return RJ_R_ERR_A;
    if (b->type == RJ_C_ERR)
        return RJ_R_ERR_B;
    if (a->type == RJ_C_STR && b->type == RJ_C_STR)
        return a->len == b->len && rj_bytes_equal(a->n.ptr, b->n.ptr, a->len);
    if (is_num(a) && is_num(b))
        return num_cmp(a, b) == 0;
    int la = is_listish(a), lb = is_listish(b);
    if (la || lb || a->type == RJ_C_MAP || b->type == RJ_C_MAP) {
        if ((la && lb) || (a->type == RJ_C_MAP && b->type == RJ_C_MAP))
            return RJ_R_UNSUP;
        return 0;
    }
    if (a->type != b->type)
        return 0;
    return a->type == RJ_C_NULL ? 1 : a->n.i == b->n.i; /* NULL or BOOL */
}

static inline RJ_HOT int order3(uint32_t op, const rj_cel *a, const rj_cel *b)
{
    if (a->type == RJ_C_ERR)
        return RJ_R_ERR_A;
    if (b->type == RJ_C_ERR)
        return RJ_R_ERR_B;
    int c;
    if (is_num(a) && is_num(b)) {
        c = num_cmp(a, b);
        if (c == 2)
            return 0;
    } else if (a->type == RJ_C_STR && b->type == RJ_C_STR) {
        c = bytes_cmp(a, b);
    } else if (a->type == RJ_C_BOOL && b->type == RJ_C_BOOL) {
        c = (a->n.i > b->n.i) - (a->n.i < b->n.i);
    } else {
        return RJ_R_OVERLOAD;
    }
    switch (op) {
    case RJ_OP_LT: return c < 0;
    case RJ_OP_LE: return c <= 0;
    case RJ_OP_GT: return c > 0;
    default: return c >= 0;
    }
}

/* Store outcome r of an operation on (a, b) into out (out may be a). */
static inline RJ_HOT void put(rj_cel *out, int r, const rj_cel *a, const rj_cel *b)
{
    if (r >= 0) {
        out->type = RJ_C_BOOL;
        out->n.i = r;
    } else if (r == RJ_R_ERR_A) {
        if (out != a)
            cel_copy(out, a);
    } else if (r == RJ_R_ERR_B) {
        cel_copy(out, b);
    } else {
        out->type = RJ_C_ERR;
        out->len = r == RJ_R_UNSUP     ? RJ_CE_UNSUPPORTED
                 : r == RJ_R_BADJSON ? RJ_CE_BAD_JSON
                 : r == RJ_R_RANGE   ? RJ_CE_RANGE
                                     : RJ_CE_OVERLOAD;
    }
}

/* ---- arithmetic ---- */

static rj_cel arith(rj_vm *vm, uint32_t op, const rj_cel *a, const rj_cel *b)
{
    if (a->type == RJ_C_ERR)
        return *a;
    if (b->type == RJ_C_ERR)
        return *b;
    rj_cel r = {0};
    if (a->type == RJ_C_INT && b->type == RJ_C_INT) {
        int64_t x = a->n.i, y = b->n.i, z;
        r.type = RJ_C_INT;
        switch (op) {
        case RJ_OP_ADD:
            if (__builtin_add_overflow(x, y, &z))
                return err(RJ_CE_OVERFLOW);
            break;
        case RJ_OP_SUB:
            if (__builtin_sub_overflow(x, y, &z))
                return err(RJ_CE_OVERFLOW);
            break;
        case RJ_OP_MUL:
            if (__builtin_mul_overflow(x, y, &z))
                return err(RJ_CE_OVERFLOW);
            break;
        case RJ_OP_DIV:
            if (!y)
                return err(RJ_CE_DIV_ZERO);
            if (x == INT64_MIN && y == -1)
                return err(RJ_CE_OVERFLOW);
            z = x / y; /* C truncates toward zero, as CEL does */
            break;
        default:
            if (!y)
                return err(RJ_CE_DIV_ZERO);
            z = (x == INT64_MIN && y == -1) ? 0 : x % y;
        }
        r.n.i = z;
        return r;
    }
    if (a->type == RJ_C_DOUBLE && b->type == RJ_C_DOUBLE && op != RJ_OP_MOD) {
        double x = a->n.d, y = b->n.d;
        r.type = RJ_C_DOUBLE;
        r.n.d = op == RJ_OP_ADD ? x + y : op == RJ_OP_SUB ? x - y : op == RJ_OP_MUL ? x * y : x / y;
        return r;
    }
    if (op == RJ_OP_ADD && a->type == RJ_C_STR && b->type == RJ_C_STR) {
        uint8_t *out = scratch_alloc(vm, (size_t)a->len + b->len + 1);
        if (!out)
            return err(RJ_CE_NOMEM);
        if (a->len)
            memcpy(out, a->n.ptr, a->len);
        if (b->len)
            memcpy(out + a->len, b->n.ptr, b->len);
        return str(out, (size_t)a->len + b->len);
    }
    return err(RJ_CE_OVERLOAD);
}

/* ---- membership and functions ---- */

typedef struct {
    const rj_cel *needle;
    int found;
    int error; /* the first comparison's error outcome, 0 if none */
} in_ctx;

/* An item comparison's error as an outcome of in3 (whose ERR_B means the
 * container's own error, not an item's). */
static int in_item_error(int r, const rj_cel *item)
{
    if (r != RJ_R_ERR_B)
        return r;
    return item->len == RJ_CE_RANGE ? RJ_R_RANGE : RJ_R_BADJSON;
}

static int visit_in(rj_vm *vm, const rj_cel *item, void *ctx)
{
    (void)vm;
    in_ctx *c = ctx;
    int r = eq3(c->needle, item);
    if (r == 1) {
        c->found = 1;
        return 1;
    }
    if (r < 0 && !c->error)
        c->error = in_item_error(r, item);
    return 0;
}

/* x in c: an outcome code, as eq3 (ERR_A is x's error, ERR_B c's). */
static int in3(rj_vm *vm, const rj_cel *x, const rj_cel *c)
{
    if (x->type == RJ_C_ERR)
        return RJ_R_ERR_A;
    if (c->type == RJ_C_ERR)
        return RJ_R_ERR_B;
    /* Lists: CEL's exists(e, e == x): a true comparison decides, else an
     * error among them is the result, else false. */
    if (c->type == RJ_C_CLIST) {
        const rj_cel *items = vm->prog->consts + c->n.i;
        int error = 0;
        for (uint32_t i = 0; i < c->len; i++) {
            int r = eq3(x, &items[i]);
            if (r == 1)
                return 1;
            if (r < 0 && !error)
                error = in_item_error(r, &items[i]);
        }
        return error;
    }
    if (c->type == RJ_C_LIST || c->type == RJ_C_MAP) {
        if (c->type == RJ_C_MAP && x->type != RJ_C_STR)
            return 0;
        in_ctx ctx = {x, 0, 0};
        if (raw_walk(vm, c, visit_in, &ctx) < 0)
            return RJ_R_BADJSON;
        return ctx.found ? 1 : c->type == RJ_C_MAP ? 0 : ctx.error;
    }
    return RJ_R_OVERLOAD;
}

/* Substring search: the kernel's first/last-byte filter on the short
 * haystacks events hold; memmem's two-way search (linear in the worst
 * case) on long ones. */
static const uint8_t *find_bytes(const rj_vm *vm, const uint8_t *h, size_t hn, const uint8_t *n,
                                 size_t nn)
{
    return hn > 256 ? memmem(h, hn, n, nn) : vm->kernel->find(h, hn, n, nn);
}

static int key_order(const void *a, const void *b)
{
    const rj_cel *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->n.ptr, y->n.ptr, x->len);
}

/* The distinct keys of the object text [p, e) that has n members (as
 * json.loads keeps them: the last of a duplicated key wins, so it counts
 * once, and keys compare unescaped). -1: out of scratch memory. */
static int64_t distinct_keys(rj_vm *vm, const uint8_t *p, const uint8_t *e, int64_t n)
{
    rj_cel *keys = rj_arena_alloc(&vm->scratch, (size_t)n * sizeof(rj_cel), _Alignof(rj_cel), NULL);
    if (!keys)
        return -1;
    int64_t k = 0;
    p = raw_ws(p + 1, e);
    while (k < n) { /* the text was walked once already: it is well formed */
        rj_cel item;
        p = raw_value(vm, p, e, &keys[k]);
        if (keys[k].type != RJ_C_STR)
            return -1;
        k++;
        p = raw_ws(p, e);
        p = raw_value(vm, raw_ws(p + 1, e), e, &item); /* past ':' */
        p = raw_ws(p, e);
        p = raw_ws(p + 1, e); /* past ',' or '}' */
    }
    qsort(keys, (size_t)n, sizeof(rj_cel), key_order);
    int64_t distinct = n > 0;
    for (int64_t i = 1; i < n; i++)
        distinct += key_order(&keys[i - 1], &keys[i]) != 0;
    return distinct;
}

static rj_cel size_of(rj_vm *vm, const rj_cel *x)
{
    rj_cel r = {0};
    r.type = RJ_C_INT;
    if (x->type == RJ_C_STR) {
        int64_t n = 0;
        for (uint32_t i = 0; i < x->len; i++)
            n += (x->n.ptr[i] & 0xC0) != 0x80; /* count code points, not bytes */
        r.n.i = n;
        return r;
    }
    if (x->type == RJ_C_CLIST) {
        r.n.i = x->len;
        return r;
    }
    if (x->type == RJ_C_LIST || x->type == RJ_C_MAP) {
        if (!raw_sound(vm, x))
            return err(RJ_CE_BAD_JSON);
        /* Count by walking: each visit bumps the counter. */
        int64_t count = 0;
        const uint8_t *p = x->n.ptr, *e = x->n.ptr + x->len;
        int obj = x->type == RJ_C_MAP;
        p = raw_ws(p + 1, e);
        if (!(p < e && *p == (obj ? '}' : ']'))) {
            for (;;) {
                rj_cel item;
                if (obj) {
                    p = raw_value(vm, p, e, &item);
                    if (!p)
                        return err(RJ_CE_BAD_JSON);
                    p = raw_ws(p, e);
                    if (p >= e || *p != ':')
                        return err(RJ_CE_BAD_JSON);
                    p = raw_ws(p + 1, e);
                }
                p = raw_value(vm, p, e, &item);
                if (!p)
                    return err(RJ_CE_BAD_JSON);
                count++;
                p = raw_ws(p, e);
                if (p < e && *p == ',') {
                    p = raw_ws(p + 1, e);
                    continue;
                }
                if (p < e && *p == (obj ? '}' : ']'))
                    break;
                return err(RJ_CE_BAD_JSON);
            }
        }
        if (obj && count > 1 && (count = distinct_keys(vm, x->n.ptr, e, count)) < 0)
            return err(RJ_CE_NOMEM);
        r.n.i = count;
        return r;
    }
    return err(RJ_CE_OVERLOAD);
}

static int all_digits(const uint8_t *p, size_t n, size_t from)
{
    if (from >= n)
        return 0;
    for (size_t i = from; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

static rj_cel to_int(const rj_cel *x)
{
    rj_cel r = {0};
    r.type = RJ_C_INT;
    if (x->type == RJ_C_INT)
        return *x;
    if (x->type == RJ_C_DOUBLE) {
        double d = x->n.d;
        if (isnan(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
            return err(RJ_CE_RANGE);
        r.n.i = (int64_t)d;
        return r;
    }
    if (x->type == RJ_C_STR) {
        size_t sign = x->len && (x->n.ptr[0] == '+' || x->n.ptr[0] == '-');
        if (!all_digits(x->n.ptr, x->len, sign))
            return err(RJ_CE_OVERLOAD);
        int neg = sign && x->n.ptr[0] == '-';
        uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (size_t i = sign; i < x->len; i++) {
            uint64_t digit = (uint64_t)(x->n.ptr[i] - '0');
            if (mag > (limit - digit) / 10)
                return err(RJ_CE_OVERFLOW);
            mag = mag * 10 + digit;
        }
        r.n.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        return r;
    }
    return err(RJ_CE_OVERLOAD);
}

static rj_cel to_double(rj_vm *vm, const rj_cel *x)
{
    rj_cel r = {0};
    r.type = RJ_C_DOUBLE;
    if (x->type == RJ_C_DOUBLE)
        return *x;
    if (x->type == RJ_C_INT) {
        r.n.d = (double)x->n.i;
        return r;
    }
    if (x->type == RJ_C_STR) {
        /* [+-]? (digits [. digits*] | . digits) ([eE][+-]?digits)? */
        const uint8_t *p = x->n.ptr, *e = x->n.ptr + x->len;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        const uint8_t *m = p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        size_t int_digits = (size_t)(p - m), frac_digits = 0;
        if (p < e && *p == '.') {
            const uint8_t *f = ++p;
            while (p < e && *p >= '0' && *p <= '9')
                p++;
            frac_digits = (size_t)(p - f);
        }
        if (!int_digits && !frac_digits)
            return err(RJ_CE_OVERLOAD);
        if (p < e && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < e && (*p == '+' || *p == '-'))
                p++;
            if (p >= e || *p < '0' || *p > '9')
                return err(RJ_CE_OVERLOAD);
            while (p < e && *p >= '0' && *p <= '9')
                p++;
        }
        if (p != e)
            return err(RJ_CE_OVERLOAD);
        /* strtod wants a terminated copy; C locale so "." is the point
         * whatever the process locale says. */
        char *buf = (char *)scratch_alloc(vm, (size_t)x->len + 1);
        if (!buf)
            return err(RJ_CE_NOMEM);
        memcpy(buf, x->n.ptr, x->len);
        buf[x->len] = 0;
        locale_t c = rj_c_locale();
        r.n.d = c ? strtod_l(buf, NULL, c) : strtod(buf, NULL);
        /* Digits only, so inf means the value overflowed: CEL makes a
         * conversion beyond the target's range an error, as int() does. */
        return isinf(r.n.d) ? err(RJ_CE_RANGE) : r;
    }
    return err(RJ_CE_OVERLOAD);
}

/* Shortest decimal digits of |d| that read back as d, and the decimal
 * exponent of the first digit. At each precision the nearest printf
 * candidate is tried, then the other decimal neighbour of d (at a power
 * of two the neighbour doubles are not equally far, so the nearest p-digit
 * decimal can miss while the other one reads back) -- which is what
 * Python's repr (David Gay's shortest mode) finds. */
static size_t shortest_digits(double d, char *digits, int *exp10)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, fabs(d));
        size_t nd = 0;
        const char *p = buf;
        for (; *p && *p != 'e'; p++)
            if (*p != '.')
                digits[nd++] = *p;
        int e = atoi(p + 1);
        double back = strtod(buf, NULL);
        if (back == fabs(d) || prec == 17) {
            *exp10 = e;
            return nd;
        }
        /* The other neighbour: one unit in the last digit up or down. */
        int up = back < fabs(d);
        size_t i = nd;
        if (up) {
            while (i > 0 && digits[i - 1] == '9')
                digits[--i] = '0';
            if (i == 0) { /* 99.9 -> 100: renormalize */
                digits[0] = '1';
                e++;
            } else {
                digits[i - 1]++;
            }
        } else {
            while (i > 0 && digits[i - 1] == '0')
                digits[--i] = '9';
            digits[i - 1]--;
            if (digits[0] == '0') { /* 1.00 -> 0.999: renormalize */
                memmove(digits, digits + 1, nd - 1);
                digits[nd - 1] = '9';
                e--;
            }
        }
        char alt[48];
        size_t k = 0;
        alt[k++] = digits[0];
        alt[k++] = '.';
        memcpy(alt + k, digits + 1, nd - 1);
        k += nd - 1;
        snprintf(alt + k, sizeof alt - k, "e%d", e);
        if (strtod(alt, NULL) == fabs(d)) {
            *exp10 = e;
            return nd;
        }
    }
    return 0; /* unreachable: 17 digits always read back */
}

size_t rj_format_double(double d, char *out)
{
    if (isnan(d))
        return (size_t)sprintf(out, "NaN");
    if (isinf(d))
        return (size_t)sprintf(out, d > 0 ? "Infinity" : "-Infinity");
    char digits[24];
    int exp10;
    size_t nd = shortest_digits(d, digits, &exp10);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int decpt = exp10 + 1;
    size_t n = 0;
    if (signbit(d))
        out[n++] = '-';
    if (decpt > -4 && decpt <= 16) {
        /* Python's repr: fixed notation when -4 < exponent < 16. */
        if (decpt <= 0) {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = 0; i < -decpt; i++)
                out[n++] = '0';
            memcpy(out + n, digits, nd);
            n += nd;
        } else if ((size_t)decpt >= nd) {
            memcpy(out + n, digits, nd);
            n += nd;
            for (size_t i = nd; i < (size_t)decpt; i++)
                out[n++] = '0';
            out[n++] = '.';
            out[n++] = '0';
        } else {
            memcpy(out + n, digits, (size_t)decpt);
            n += (size_t)decpt;
            out[n++] = '.';
            memcpy(out + n, digits + decpt, nd - (size_t)decpt);
            n += nd - (size_t)decpt;
        }
    } else {
        out[n++] = digits[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, digits + 1, nd - 1);
            n += nd - 1;
        }
        n += (size_t)sprintf(out + n, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
    out[n] = 0;
    return n;
}

static rj_cel to_string(rj_vm *vm, const rj_cel *x)
{
    char buf[40];
    size_t n;
    switch (x->type) {
    case RJ_C_STR: return *x;
    case RJ_C_BOOL: n = (size_t)sprintf(buf, x->n.i ? "true" : "false"); break;
    case RJ_C_INT: n = (size_t)sprintf(buf, "%lld", (long long)x->n.i); break;
    case RJ_C_DOUBLE: n = rj_format_double(x->n.d, buf); break;
    default: return err(RJ_CE_OVERLOAD);
    }
    uint8_t *out = scratch_alloc(vm, n);
    if (!out)
        return err(RJ_CE_NOMEM);
    memcpy(out, buf, n);
    return str(out, n);
}

/* The memo set (RJ_RE_MEMO_WAYS entries, the most recent first) for
 * pattern re and the string s[0..n). */
static rj_re_memo *re_memo_set(rj_vm *vm, uint32_t re, const uint8_t *s, size_t n)
{
    uint64_t h = (re + 1) * 0x9E3779B97F4A7C15ULL ^ n, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
    }
    for (w = 0; i < n; i++)
        w = w << 8 | s[i];
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 29;
    return &vm->re_memo[(h >> (64 - RJ_RE_MEMO_BITS)) * RJ_RE_MEMO_WAYS];
}

static int re_memo_is(const rj_re_memo *m, uint32_t re, const rj_cel *s)
{
    return m->re == re && m->len == s->len && (!s->len || memcmp(m->text, s->n.ptr, s->len) == 0);
}

/* The memo, made on the first pattern matched (NULL: not wanted, or no
 * memory for it, which only costs speed). */
static rj_re_memo *re_memo(rj_vm *vm)
{
    if (!vm->re_memo && vm->re_memo_wanted) {
        vm->re_memo_wanted = 0;
        vm->re_memo = malloc(RJ_RE_MEMO_ENTRIES * sizeof *vm->re_memo);
        vm->re_use = calloc(vm->prog->n_regex, sizeof *vm->re_use);
        if (!vm->re_memo || !vm->re_use) {
            free(vm->re_memo);
            free(vm->re_use);
            vm->re_memo = NULL;
            vm->re_use = NULL;
            return NULL;
        }
        for (uint32_t i = 0; i < RJ_RE_MEMO_ENTRIES; i++)
            vm->re_memo[i].re = UINT32_MAX;
    }
    return vm->re_memo;
}

/* Whether pattern re consults the memo this call (see RJ_RE_MEMO_TRIAL). */
static int re_memo_use(rj_vm *vm, uint32_t re)
{
    return rj_memo_trial_use(&vm->re_use[re], RJ_RE_MEMO_TRIAL,
                             RJ_RE_MEMO_TRIAL / RJ_RE_MEMO_MIN_HITS, RJ_RE_MEMO_REST);
}

/* REG_STARTEND gives regexec the string's length, so a NUL inside it is
 * just a byte; the regex runs in a UTF-8 locale whatever the process
 * locale is (matching is per character, as in Python). A remembered
 * result (the memo above) skips all of it. */
static rj_cel matches(rj_vm *vm, const rj_cel *s, uint32_t re)
{
    rj_re_memo *set = NULL;
    if (s->len <= RJ_RE_MEMO_MAX && re_memo(vm) && re_memo_use(vm, re)) {
        set = re_memo_set(vm, re, s->n.ptr, s->len);
        for (uint32_t w = 0; w < RJ_RE_MEMO_WAYS; w++) {
            if (re_memo_is(&set[w], re, s)) {
                vm->re_use[re].hits++;
                return boolean((int)set[w].result);
            }
        }
    }
    uint8_t *z = scratch_alloc(vm, (size_t)s->len + 1);
    if (!z)
        return err(RJ_CE_NOMEM);
    if (s->len)
        memcpy(z, s->n.ptr, s->len);
    z[s->len] = 0;
    /* A lone surrogate (from a "\ud800" escape) is 3 WTF-8 bytes that
     * glibc's UTF-8 matcher sees as invalid and matches with nothing. It
     * is matched as the regex's stand-in instead, a code point next to the
     * surrogate block (also 3 bytes, also no letter, digit or space) that
     * the compiler chose because the pattern never names it: then every
     * class and range holds the stand-in exactly when Python's would hold
     * the surrogate (patterns cannot name surrogates, so a range either
     * spans the whole block, and the stand-in, or neither). */
    uint32_t cp = vm->prog->regex_standin[re];
    const uint8_t standin[3] = {(uint8_t)(0xE0 | cp >> 12), (uint8_t)(0x80 | ((cp >> 6) & 0x3F)),
                                (uint8_t)(0x80 | (cp & 0x3F))};
    for (uint8_t *q = z; (q = memchr(q, 0xED, (size_t)(z + s->len - q))) && z + s->len - q >= 3; q++)
        if (q[1] >= 0xA0 && q[1] <= 0xBF) {
            memcpy(q, standin, 3);
            q += 2;
        }
    regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)s->len};
    locale_t u = rj_utf8_locale(), old = u ? uselocale(u) : (locale_t)0;
    int r = regexec(&vm->prog->regex[re], (const char *)z, 1, &m, REG_STARTEND);
    if (u)
        uselocale(old);
    if (set && (r == 0 || r == REG_NOMATCH)) { /* not a failure such as REG_ESPACE */
        /* The newest first: the oldest entry of the set drops out. */
        memmove(&set[1], &set[0], (RJ_RE_MEMO_WAYS - 1) * sizeof *set);
        set->re = re;
        set->len = s->len;
        set->result = r == 0;
        if (s->len)
            memcpy(set->text, s->n.ptr, s->len);
    }
    return boolean(r == 0);
}

/* Whether the bytes s[0..n) are the string constant k (plain bytes on
 * both sides: an unescaped value, or a decoded one). */
static inline RJ_HOT int str_is(const uint8_t *s, size_t n, const rj_cel *k)
{
    return k->type == RJ_C_STR && k->len == n && rj_bytes_equal(s, k->n.ptr, n);
}

/* startsWith / endsWith / contains of k[0..kn) in s[0..n). */
static inline RJ_HOT int str_test(const rj_vm *vm, uint32_t op, const uint8_t *s, size_t n,
                                  const uint8_t *k, size_t kn)
{
    switch (op) {
    case RJ_OP_CONTAINS: case RJ_OP_F_CONTAINS: return find_bytes(vm, s, n, k, kn) != NULL;
    case RJ_OP_STARTS: case RJ_OP_F_STARTS: return kn <= n && rj_bytes_equal(s, k, kn);
    default: return kn <= n && rj_bytes_equal(s + n - kn, k, kn); /* endsWith */
    }
}

/* startsWith / endsWith / contains: an outcome code. */
static inline RJ_HOT int str3(const rj_vm *vm, uint32_t op, const rj_cel *t, const rj_cel *a)
{
    if (t->type == RJ_C_ERR)
        return RJ_R_ERR_A;
    if (a->type == RJ_C_ERR)
        return RJ_R_ERR_B;
    if (t->type != RJ_C_STR || a->type != RJ_C_STR)
        return RJ_R_OVERLOAD;
    return str_test(vm, op, t->n.ptr, t->len, a->n.ptr, a->len);
}

/* An extracted value as a CEL value, written into c with cel_set (a
 * missing field is an error value; an escaped string is unescaped into
 * the event's scratch). */
static inline RJ_HOT void cel_from_value(rj_vm *vm, rj_cel *c, const rj_value *v)
{
    uint64_t bits;
    rj_cel t;
    switch (v->type) {
    case RJ_V_MISSING: cel_set(c, RJ_C_ERR, RJ_CE_NO_FIELD, 0); return;
    case RJ_V_NULL: cel_set(c, RJ_C_NULL, 0, 0); return;
    case RJ_V_FALSE: cel_set(c, RJ_C_BOOL, 0, 0); return;
    case RJ_V_TRUE: cel_set(c, RJ_C_BOOL, 0, 1); return;
    case RJ_V_INT: case RJ_V_DOUBLE: /* the union's bits, int or double */
        memcpy(&bits, &v->num, 8);
        cel_set(c, v->type == RJ_V_INT ? RJ_C_INT : RJ_C_DOUBLE, 0, bits);
        return;
    case RJ_V_BIGINT: cel_set(c, RJ_C_ERR, RJ_CE_RANGE, 0); return;
    case RJ_V_STRING:
        if (!(v->flags & RJ_VF_ESCAPED)) {
            cel_set(c, RJ_C_STR, v->len, (uint64_t)(uintptr_t)(vm->base + v->off));
            return;
        }
        t = event_string(vm, vm->base + v->off, v->len, 1);
        cel_copy(c, &t);
        return;
    default: /* RJ_V_OBJECT, RJ_V_ARRAY */
        cel_set(c, v->type == RJ_V_OBJECT ? RJ_C_MAP : RJ_C_LIST, v->len,
                (uint64_t)(uintptr_t)(vm->base + v->off));
    }
}

/* The cached value of a slot for this event (loaded on first use). */
static inline RJ_HOT const rj_cel *slot_ref(rj_vm *vm, uint32_t slot)
{
    if (vm->slot_gen[slot] != vm->gen) {
        cel_from_value(vm, &vm->slot_cache[slot], &vm->row[slot]);
        vm->slot_gen[slot] = vm->gen;
    }
    return &vm->slot_cache[slot];
}

/* The outcome code of "v op k" for a fused op other than HAS (as eq3:
 * RJ_R_ERR_A is v's error, RJ_R_ERR_B k's, whatever the op's order). */
static inline RJ_HOT int fused3(rj_vm *vm, uint32_t op, const rj_cel *v, const rj_cel *k)
{
    int r;
    switch (op) {
    case RJ_OP_F_EQ: return eq3(v, k);
    case RJ_OP_F_NE:
        r = eq3(v, k);
        return r >= 0 ? !r : r;
    case RJ_OP_F_LT: case RJ_OP_F_LE: case RJ_OP_F_GT: case RJ_OP_F_GE:
        return order3(op - RJ_OP_F_LT + RJ_OP_LT, v, k);
    case RJ_OP_F_IN: return in3(vm, v, k);
    case RJ_OP_F_CONST_IN: /* operands the other way round */
        r = in3(vm, k, v);
        return r == RJ_R_ERR_A ? RJ_R_ERR_B : r == RJ_R_ERR_B ? RJ_R_ERR_A : r;
    default: return str3(vm, op, v, k);
    }
}

/* A fused "field op constant" instruction, stored into out. */
static inline RJ_HOT void fused_into(rj_vm *vm, rj_cel *out, uint32_t op, uint32_t slot, int32_t arg)
{
    const rj_cel *v = slot_ref(vm, slot), *k = &vm->prog->consts[arg];
    int r = op == RJ_OP_HAS      ? vm->row[slot].type != RJ_V_MISSING
            : op == RJ_OP_F_TYPE ? (int)((k->n.i >> vm->row[slot].type) & 1)
                                 : fused3(vm, op, v, k);
    put(out, r, v, k);
}

/* ---- the interpreter ---- */

static rj_cel run(rj_vm *vm, uint32_t pc)
{
    const rj_insn *code = vm->prog->code;
    rj_cel *sp = vm->stack; /* next free */
    for (;;) {
        const rj_insn in_ = code[pc++];
        switch (in_.op) {
        case RJ_OP_LOAD: cel_copy(sp++, slot_ref(vm, (uint32_t)in_.arg)); break;
        case RJ_OP_HAS: *sp++ = boolean(vm->row[in_.arg].type != RJ_V_MISSING); break;
        case RJ_OP_CONST: *sp++ = vm->prog->consts[in_.arg]; break;
        case RJ_OP_NOT:
            if (sp[-1].type == RJ_C_BOOL)
                sp[-1].n.i = !sp[-1].n.i;
            else if (sp[-1].type != RJ_C_ERR)
                sp[-1] = err(RJ_CE_OVERLOAD);
            break;
        case RJ_OP_NEG:
            if (sp[-1].type == RJ_C_INT) {
                if (sp[-1].n.i == INT64_MIN)
                    sp[-1] = err(RJ_CE_OVERFLOW);
                else
                    sp[-1].n.i = -sp[-1].n.i;
            } else if (sp[-1].type == RJ_C_DOUBLE) {
                sp[-1].n.d = -sp[-1].n.d;
            } else if (sp[-1].type != RJ_C_ERR) {
                sp[-1] = err(RJ_CE_OVERLOAD);
            }
            break;
        case RJ_OP_EQ: case RJ_OP_NE: {
            sp--;
            int r = eq3(&sp[-1], &sp[0]);
            if (r >= 0 && in_.op == RJ_OP_NE)
                r = !r;
            put(&sp[-1], r, &sp[-1], &sp[0]);
            break;
        }
        case RJ_OP_LT: case RJ_OP_LE: case RJ_OP_GT: case RJ_OP_GE:
            sp--;
            put(&sp[-1], order3(in_.op, &sp[-1], &sp[0]), &sp[-1], &sp[0]);
            break;
        case RJ_OP_ADD: case RJ_OP_SUB: case RJ_OP_MUL: case RJ_OP_DIV: case RJ_OP_MOD:
            sp--;
            sp[-1] = arith(vm, in_.op, &sp[-1], &sp[0]);
            break;
        case RJ_OP_IN: sp--; put(&sp[-1], in3(vm, &sp[-1], &sp[0]), &sp[-1], &sp[0]); break;
        case RJ_OP_AND_SC:
            if (sp[-1].type == RJ_C_BOOL && !sp[-1].n.i)
                pc = (uint32_t)in_.arg;
            break;
        case RJ_OP_AND: {
            sp--;
            const rj_cel *a = &sp[-1], *b = &sp[0];
            if (b->type == RJ_C_BOOL && !b->n.i)
                put(&sp[-1], 0, a, b);
            else if (a->type == RJ_C_ERR)
                ;
            else if (b->type == RJ_C_ERR)
                sp[-1] = *b;
            else if (a->type == RJ_C_BOOL && b->type == RJ_C_BOOL)
                put(&sp[-1], 1, a, b);
            else
                put(&sp[-1], RJ_R_OVERLOAD, a, b);
            break;
        }
        case RJ_OP_OR_SC:
            if (sp[-1].type == RJ_C_BOOL && sp[-1].n.i)
                pc = (uint32_t)in_.arg;
            break;
        case RJ_OP_OR: {
            sp--;
            const rj_cel *a = &sp[-1], *b = &sp[0];
            if (b->type == RJ_C_BOOL && b->n.i)
                put(&sp[-1], 1, a, b);
            else if (a->type == RJ_C_ERR)
                ;
            else if (b->type == RJ_C_ERR)
                sp[-1] = *b;
            else if (a->type == RJ_C_BOOL && b->type == RJ_C_BOOL)
                put(&sp[-1], 0, a, b);
            else
                put(&sp[-1], RJ_R_OVERLOAD, a, b);
            break;
        }
        case RJ_OP_TEST: {
            rj_cel t = *--sp;
            if (t.type == RJ_C_BOOL) {
                if (!t.n.i)
                    pc = (uint32_t)in_.arg;
            } else {
                /* The then-branch ends with the JUMP to the end just
                 * before the else-branch starts. */
                *sp++ = t.type == RJ_C_ERR ? t : err(RJ_CE_OVERLOAD);
                pc = (uint32_t)code[in_.arg - 1].arg;
            }
            break;
        }
        case RJ_OP_JUMP: pc = (uint32_t)in_.arg; break;
        case RJ_OP_STARTS: case RJ_OP_ENDS: case RJ_OP_CONTAINS:
            sp--;
            put(&sp[-1], str3(vm, in_.op, &sp[-1], &sp[0]), &sp[-1], &sp[0]);
            break;
        case RJ_OP_F_EQ: case RJ_OP_F_NE: case RJ_OP_F_LT: case RJ_OP_F_LE: case RJ_OP_F_GT:
        case RJ_OP_F_GE: case RJ_OP_F_IN: case RJ_OP_F_CONST_IN: case RJ_OP_F_STARTS:
        case RJ_OP_F_ENDS: case RJ_OP_F_CONTAINS: case RJ_OP_F_TYPE:
            fused_into(vm, sp++, in_.op, in_.a, in_.arg);
            break;
        case RJ_OP_MATCHES:
            if (sp[-1].type == RJ_C_STR)
                sp[-1] = matches(vm, &sp[-1], (uint32_t)in_.arg);
            else if (sp[-1].type != RJ_C_ERR)
                sp[-1] = err(RJ_CE_OVERLOAD);
            break;
        case RJ_OP_F_MATCHES: /* as LOAD, MATCHES */
            *sp = *slot_ref(vm, in_.a);
            if (sp->type == RJ_C_STR)
                *sp = matches(vm, sp, (uint32_t)in_.arg);
            else if (sp->type != RJ_C_ERR)
                *sp = err(RJ_CE_OVERLOAD);
            sp++;
            break;
        case RJ_OP_LOWER:
            if (sp[-1].type == RJ_C_STR) {
                uint8_t *out = scratch_alloc(vm, sp[-1].len ? sp[-1].len : 1);
                if (!out) {
                    sp[-1] = err(RJ_CE_NOMEM);
                    break;
                }
                for (uint32_t i = 0; i < sp[-1].len; i++) {
                    uint8_t ch = sp[-1].n.ptr[i];
                    out[i] = (ch >= 'A' && ch <= 'Z') ? (uint8_t)(ch + 32) : ch;
                }
                sp[-1].n.ptr = out;
            } else if (sp[-1].type != RJ_C_ERR) {
                sp[-1] = err(RJ_CE_OVERLOAD);
            }
            break;
        case RJ_OP_SIZE:
            if (sp[-1].type != RJ_C_ERR)
                sp[-1] = size_of(vm, &sp[-1]);
            break;
        case RJ_OP_TO_INT:
            if (sp[-1].type != RJ_C_ERR)
                sp[-1] = to_int(&sp[-1]);
            break;
        case RJ_OP_TO_DOUBLE:
            if (sp[-1].type != RJ_C_ERR)
                sp[-1] = to_double(vm, &sp[-1]);
            break;
        case RJ_OP_TO_STRING:
            if (sp[-1].type != RJ_C_ERR)
                sp[-1] = to_string(vm, &sp[-1]);
            break;
        default: /* RJ_OP_RET (the loader rejects unknown opcodes) */
            return sp[-1];
        }
    }
}

static void begin_event(rj_vm *vm, const rj_value *row, const uint8_t *base)
{
    vm->row = row;
    vm->base = base;
    vm->arr_used = 0;
    if (++vm->gen == 0) { /* wrapped: old cache marks could look current */
        memset(vm->slot_gen, 0, (vm->prog->ps->n_slots ? vm->prog->ps->n_slots : 1) * sizeof(uint32_t));
        memset(vm->arr, 0, (vm->prog->ps->n_slots ? vm->prog->ps->n_slots : 1) * sizeof *vm->arr);
        memset(vm->atom_gen, 0, (vm->prog->n_atoms ? vm->prog->n_atoms : 1) * sizeof(uint32_t));
        vm->gen = 1;
    }
    scratch_rewind(vm);
}

/* ---- guard index ---- */

/* Guards on a field with at most this many constants compare the value
 * with each in turn: cheaper than hashing it. */
#define RJ_GUARD_LINEAR 6
/* A string or int straight from the event is compared with up to this
 * many (a length or an int compare each: cheaper than converting it). */
#define RJ_GUARD_DIRECT 16

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* Equal values (by eq) hash alike: an integral double hashes as the int. */
static uint64_t guard_hash(const rj_cel *v)
{
    switch (v->type) {
    case RJ_C_INT: return mix((uint64_t)v->n.i ^ 0x1);
    case RJ_C_DOUBLE: {
        double d = v->n.d;
        if (d == trunc(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
            return mix((uint64_t)(int64_t)d ^ 0x1);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return mix(bits ^ 0x2);
    }
    case RJ_C_STR: { /* a word at a time: values are hashed per event */
        uint64_t h = 0xcbf29ce484222325ULL ^ v->len, w;
        const uint8_t *q = v->n.ptr;
        uint32_t n = v->len;
        for (; n > 8; q += 8, n -= 8) {
            memcpy(&w, q, 8);
            h = (h ^ w) * 0x100000001b3ULL;
            h ^= h >> 29;
        }
        /* The last 1-8 bytes by loads inside the string (overlapping ones
         * for 4-7), never a short copy through memory (its reload stalls). */
        if (v->len >= 8) {
            memcpy(&w, v->n.ptr + v->len - 8, 8);
        } else if (n >= 4) {
            uint32_t lo, hi;
            memcpy(&lo, q, 4);
            memcpy(&hi, q + n - 4, 4);
            w = lo | (uint64_t)hi << 32;
        } else {
            w = n ? q[0] | (uint64_t)q[n / 2] << 8 | (uint64_t)q[n - 1] << 16 : 0;
        }
        h = (h ^ w) * 0x100000001b3ULL;
        return mix(h ^ 0x3);
    }
    case RJ_C_BOOL: return mix(0x10 + (uint64_t)v->n.i);
    case RJ_C_NULL: return mix(0x20);
    default: return mix(0x30);
    }
}

void rj_program_free_index(rj_program *p)
{
    for (uint32_t g = 0; p->groups && g < p->n_groups; g++) {
        free(p->groups[g].rules);
        free(p->groups[g].table_const);
        free(p->groups[g].table_rule);
        free(p->groups[g].pair_const);
    }
    free(p->groups);
    free(p->live_groups);
    p->live_groups = NULL;
    p->n_live_groups = 0;
    free(p->unguarded);
    rj_cells_free(p);
    rj_vmemo_free_program(p);
    p->groups = NULL;
    p->unguarded = NULL;
    p->n_groups = 0;
}

/* Does s[0..n) hold a byte that a JSON string must escape? */
static int needs_escape(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"' || s[i] == '\\' || s[i] < 0x20)
            return 1;
    return 0;
}

int rj_program_index(rj_program *p)
{
    p->n_words = (p->n_rules + 63) / 64;
    p->unguarded = calloc(p->n_words ? p->n_words : 1, sizeof(uint64_t));
    p->groups = calloc(p->n_rules ? (size_t)p->n_rules * RJ_MAX_GUARDS : 1, sizeof(rj_guard_group));
    if (!p->unguarded || !p->groups)
        goto nomem;
    /* One group per (field, kind, conjunct or disjunct guards): a rule
     * joins one group per guard. Conjunct groups may be left to the cells
     * (drop_covered_guards); disjunct ones stay apart so they never keep a
     * conjunct group from it. */
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const rj_rule_code *rc = &p->rules[r];
        p->any_stop |= rc->stop != 0;
        if (!rc->n_guards) {
            p->unguarded[r / 64] |= 1ULL << (r % 64);
            continue;
        }
        uint32_t disj = rc->n_guards > 1;
        for (uint32_t j = 0; j < rc->n_guards; j++) {
            const rj_rule_guard *gd = &rc->guards[j];
            uint32_t g = 0;
            while (g < p->n_groups && (p->groups[g].slot != gd->slot || p->groups[g].kind != gd->kind ||
                                       p->groups[g].disjunct != disj))
                g++;
            if (g == p->n_groups) {
                p->groups[g].slot = gd->slot;
                p->groups[g].kind = gd->kind;
                p->groups[g].disjunct = disj;
                p->n_groups++;
            }
            p->groups[g].n_rules++;
            /* table_bits temporarily counts the group's (constant, rule) pairs */
            p->groups[g].table_bits += gd->kind != RJ_GUARD_NOT_FALSE ? gd->len : 0;
        }
    }
    for (uint32_t g = 0; g < p->n_groups; g++) {
        rj_guard_group *G = &p->groups[g];
        uint32_t pairs = G->table_bits, bits = 1;
        while ((1u << bits) < 2 * pairs + 1)
            bits++;
        G->table_bits = bits;
        G->rules = malloc(G->n_rules * sizeof(uint32_t));
        G->table_const = malloc(sizeof(uint32_t) << bits);
        G->table_rule = malloc(sizeof(uint32_t) << bits);
        G->pair_const = malloc(2 * (size_t)(pairs ? pairs : 1) * sizeof(uint32_t));
        if (!G->rules || !G->table_const || !G->table_rule || !G->pair_const)
            goto nomem;
        G->pair_rule = G->pair_const + pairs;
        memset(G->table_const, 0xff, sizeof(uint32_t) << bits);
        G->n_rules = 0;
        for (uint32_t r = 0; r < p->n_rules; r++) {
            const rj_rule_code *rc = &p->rules[r];
            for (uint32_t j = 0; j < rc->n_guards; j++) {
                const rj_rule_guard *gd = &rc->guards[j];
                if (gd->slot != G->slot || gd->kind != G->kind || (rc->n_guards > 1) != G->disjunct)
                    continue;
                G->rules[G->n_rules++] = r;
                for (uint32_t i = 0; G->kind != RJ_GUARD_NOT_FALSE && i < gd->len; i++) {
                    uint32_t k = gd->off + i;
                    G->pair_const[G->n_pairs] = k;
                    G->pair_rule[G->n_pairs++] = r;
                    if (G->kind != RJ_GUARD_IN)
                        continue; /* suffixes are only compared in turn */
                    uint64_t mask = (1ULL << bits) - 1, h = guard_hash(&p->consts[k]) & mask;
                    while (G->table_const[h] != UINT32_MAX)
                        h = (h + 1) & mask;
                    G->table_const[h] = k;
                    G->table_rule[h] = r;
                }
            }
        }
    }
    if (rj_cells_build(p) < 0 || rj_cells_rule_bits(p) < 0)
        goto nomem;
    /* A conjunction whose table atoms are all true this event (the cells'
     * "satisfied") needs only its other atoms evaluated. */
    for (uint32_t r = 0; r < p->n_rules; r++) {
        rj_rule_code *rc = &p->rules[r];
        int n = 0;
        for (int a = 0; a < RJ_MAX_ATOMS && rc->pre[a] >= 0; a++)
            if (p->atoms[rc->pre[a]].cells < 0)
                rc->pre_computed[n++] = rc->pre[a];
        for (; n < RJ_MAX_ATOMS; n++)
            rc->pre_computed[n] = -1;
    }
    p->live_groups = malloc((p->n_groups ? p->n_groups : 1) * sizeof(uint32_t));
    if (!p->live_groups)
        goto nomem;
    for (uint32_t g = 0; g < p->n_groups; g++)
        if (!p->groups[g].in_cells)
            p->live_groups[p->n_live_groups++] = g;
    /* Atoms read once per event need no memo (cells renumbered them). */
    for (uint32_t i = 0; i < p->n_atoms; i++)
        p->atoms[i].shared = 0;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const rj_rule_code *rc = &p->rules[r];
        if (rc->shape == RJ_SHAPE_TREE) {
            for (uint32_t t = 0; t < rc->tree_len; t++)
                if (p->tree[rc->tree_off + t] >= 0)
                    p->atoms[p->tree[rc->tree_off + t]].shared++;
        } else {
            for (int a = 0; a < RJ_MAX_ATOMS && rc->pre[a] >= 0; a++)
                p->atoms[rc->pre[a]].shared++;
        }
    }
    for (uint32_t i = 0; i < p->n_atoms; i++) {
        rj_atom *a = &p->atoms[i];
        a->shared = a->shared > 1;
        a->fast = RJ_FAST_NONE;
        if (a->op < RJ_OP_F_EQ || a->op >= RJ_OP_MAX_ || a->op == RJ_OP_F_MATCHES)
            continue; /* (F_MATCHES: arg is no constant) */
        const rj_cel *k = &p->consts[a->arg];
        int ordering = a->op >= RJ_OP_F_LT && a->op <= RJ_OP_F_GE;
        if (k->type == RJ_C_STR && (a->op == RJ_OP_F_EQ || a->op == RJ_OP_F_NE ||
                                    a->op == RJ_OP_F_STARTS || a->op == RJ_OP_F_ENDS ||
                                    a->op == RJ_OP_F_CONTAINS))
            a->fast = needs_escape(k->n.ptr, k->len) ? RJ_FAST_STR_ESCAPED : RJ_FAST_STR;
        else if (ordering && k->type == RJ_C_INT)
            a->fast = RJ_FAST_INT;
        else if (ordering && k->type == RJ_C_DOUBLE && !isnan(k->n.d))
            a->fast = RJ_FAST_DOUBLE;
        else if (a->op == RJ_OP_F_CONST_IN && k->type == RJ_C_STR)
            a->fast = RJ_FAST_IN_STRINGS;
        else if ((a->op == RJ_OP_F_EQ || a->op == RJ_OP_F_NE) && k->type == RJ_C_BOOL)
            a->fast = RJ_FAST_BOOL;
    }
    if (rj_vmemo_build(p) < 0)
        goto nomem;
    return 0;
nomem:
    rj_program_free_index(p);
    return -ENOMEM;
}

/* Rule r is to be evaluated this event. */
static inline void activate(rj_vm *vm, uint32_t r)
{
    vm->active[r / 64] |= 1ULL << (r % 64);
}

/* Mark the rules this event must evaluate: the unguarded ones, and the
 * guarded ones whose field holds one of their constants or ends with their
 * suffix (or is absent or unreadable: then the rule runs, so its error is
 * counted). */
static void select_rules(rj_vm *vm)
{
    const rj_program *p = vm->prog;
    memcpy(vm->active, p->unguarded, p->n_words * sizeof(uint64_t));
    for (uint32_t lg = 0; lg < p->n_live_groups; lg++) {
        const rj_guard_group *G = &p->groups[p->live_groups[lg]];
        if (G->kind == RJ_GUARD_NOT_FALSE) { /* anything but false may decide the rule */
            if (vm->row[G->slot].type != RJ_V_FALSE)
                for (uint32_t i = 0; i < G->n_rules; i++)
                    activate(vm, G->rules[i]);
            continue;
        }
        const rj_value *rv = &vm->row[G->slot];
        if (G->kind == RJ_GUARD_SUFFIX) { /* a plain string ends with each, or not */
            if (rv->type == RJ_V_STRING && !(rv->flags & RJ_VF_ESCAPED)) {
                const uint8_t *s = vm->base + rv->off;
                for (uint32_t i = 0; i < G->n_pairs; i++) {
                    const rj_cel *k = &p->consts[G->pair_const[i]];
                    if (k->len <= rv->len && rj_bytes_equal(s + rv->len - k->len, k->n.ptr, k->len))
                        activate(vm, G->pair_rule[i]);
                }
            } else { /* escaped: the rule decides; anything else: its error counts */
                for (uint32_t i = 0; i < G->n_rules; i++)
                    activate(vm, G->rules[i]);
            }
            continue;
        }
        /* The usual values straight from the event, against each constant
         * (equality across types is false; an int against a double is
         * compared exactly). */
        if (rv->type == RJ_V_STRING && !(rv->flags & RJ_VF_ESCAPED) &&
            G->n_pairs <= RJ_GUARD_DIRECT) {
            const uint8_t *s = vm->base + rv->off;
            for (uint32_t i = 0; i < G->n_pairs; i++) {
                const rj_cel *k = &p->consts[G->pair_const[i]];
                if (str_is(s, rv->len, k))
                    activate(vm, G->pair_rule[i]);
            }
            continue;
        }
        if (rv->type == RJ_V_INT && G->n_pairs <= RJ_GUARD_DIRECT) {
            rj_cel x;
            cel_set(&x, RJ_C_INT, 0, (uint64_t)rv->num.i);
            for (uint32_t i = 0; i < G->n_pairs; i++) {
                const rj_cel *k = &p->consts[G->pair_const[i]];
                if (k->type == RJ_C_INT ? k->n.i == rv->num.i
                                        : k->type == RJ_C_DOUBLE && num_cmp(&x, k) == 0)
                    activate(vm, G->pair_rule[i]);
            }
            continue;
        }
        const rj_cel *vp = slot_ref(vm, G->slot);
        if (vp->type == RJ_C_ERR) {
            for (uint32_t i = 0; i < G->n_rules; i++)
                activate(vm, G->rules[i]);
            continue;
        }
        if (G->n_pairs <= RJ_GUARD_LINEAR) { /* a few: compare in turn, no hash */
            for (uint32_t i = 0; i < G->n_pairs; i++)
                if (eq3(vp, &p->consts[G->pair_const[i]]) == 1)
                    activate(vm, G->pair_rule[i]);
            continue;
        }
        uint64_t mask = (1ULL << G->table_bits) - 1, h = guard_hash(vp) & mask;
        for (; G->table_const[h] != UINT32_MAX; h = (h + 1) & mask) {
            if (eq3(vp, &p->consts[G->table_const[h]]) == 1)
                activate(vm, G->table_rule[h]);
        }
    }
}

/* One atom evaluated on its own: 0 false, 1 true, 2 neither (an error
 * or a non-bool, which only the full code can judge). */
static __attribute__((noinline)) uint8_t atom_eval(rj_vm *vm, const rj_atom *a)
{
    const rj_value *rv = &vm->row[a->a];
    uint8_t neg = a->negate != 0;
    if (a->op == RJ_OP_HAS)
        return (uint8_t)((rv->type != RJ_V_MISSING) ^ neg);
    if (a->op == RJ_OP_F_TYPE)
        return (uint8_t)(((vm->prog->consts[a->arg].n.i >> rv->type) & 1) ^ neg);
    if (a->op == RJ_OP_LOAD) /* a bare field: only a bool is true or false */
        return rv->type == RJ_V_TRUE || rv->type == RJ_V_FALSE
                   ? (uint8_t)((rv->type == RJ_V_TRUE) ^ neg) : 2;
    if (rv->type == RJ_V_MISSING || rv->type == RJ_V_BIGINT)
        return 2; /* an error value (no field; out of range): every operation keeps it */
    /* An escaped string through the slot cache (unescaped once per event);
     * anything else as a local (no cache: most atoms are a field's only
     * reader this event). */
    rj_cel x;
    const rj_cel *xp = &x;
    if (rv->type == RJ_V_STRING && (rv->flags & RJ_VF_ESCAPED))
        xp = slot_ref(vm, a->a);
    else
        cel_from_value(vm, &x, rv);
    if (a->op == RJ_OP_F_MATCHES) { /* anything but a string is an error */
        rj_cel m = xp->type == RJ_C_STR ? matches(vm, xp, (uint32_t)a->arg) : err(RJ_CE_OVERLOAD);
        return m.type == RJ_C_BOOL ? (uint8_t)((m.n.i != 0) ^ neg) : 2;
    }
    int r = fused3(vm, a->op, xp, &vm->prog->consts[a->arg]);
    return r >= 0 ? (uint8_t)((r != 0) ^ neg) : 2;
}

/* Bytes that stand for themselves inside a JSON string: printable ASCII
 * but '"' and '\\' (a table: one load a byte instead of four tests). */
static const uint8_t rj_plain_byte[256] = {
#define RJ_P8(c) [c] = 1, [c + 1] = 1, [c + 2] = 1, [c + 3] = 1, [c + 4] = 1, [c + 5] = 1, \
                 [c + 6] = 1, [c + 7] = 1
    [0x20] = 1, [0x21] = 1, [0x23] = 1, [0x24] = 1, [0x25] = 1, [0x26] = 1, [0x27] = 1,
    RJ_P8(0x28), RJ_P8(0x30), RJ_P8(0x38), RJ_P8(0x40), RJ_P8(0x48), RJ_P8(0x50),
    [0x58] = 1, [0x59] = 1, [0x5a] = 1, [0x5b] = 1, [0x5d] = 1, [0x5e] = 1, [0x5f] = 1,
    RJ_P8(0x60), RJ_P8(0x68), RJ_P8(0x70), RJ_P8(0x78),
#undef RJ_P8
};

/* Arrays of plain ASCII strings (escape-free elements, whose value is
 * their bytes), an element at a time: *p starts at the '[' with *first
 * set. Returns 1 with the next element in s[0..*n), 0 at the closing ']',
 * -1 when the text is not such an array (escapes, other elements,
 * malformed: the general walk then decides). */
static inline __attribute__((always_inline)) int
plain_strings_next(const uint8_t **p, const uint8_t *e, int *first, const uint8_t **s, size_t *n)
{
    const uint8_t *q = raw_ws(*p + 1, e); /* past the '[' or the last element's quote */
    if (q < e && *q == ']')
        return 0;
    if (!*first) {
        if (q >= e || *q != ',')
            return -1;
        q = raw_ws(q + 1, e);
    }
    *first = 0;
    if (q >= e || *q != '"')
        return -1;
    *s = ++q;
    while (q < e && rj_plain_byte[*q])
        q++;
    if (q >= e || *q != '"')
        return -1;
    *n = (size_t)(q - *s);
    *p = q;
    return 1;
}

/* Whether the plain string n[0..nn) is in the array text [p, e) (p at its
 * '['): 1 or 0, or -1 when the text is not an array of plain strings. */
static int raw_plain_string_in(const uint8_t *p, const uint8_t *e, const uint8_t *n, size_t nn)
{
    const uint8_t *s;
    size_t len;
    int first = 1, r, found = 0;
    while ((r = plain_strings_next(&p, e, &first, &s, &len)) == 1) /* to the end: all sound */
        found |= len == nn && rj_bytes_equal(s, n, nn);
    return r < 0 ? r : found;
}

/* Split the array text [p, e) (p at its '[') into arr_el if it holds only
 * plain strings, for this event: sets the slot's first and count, first
 * RJ_ARR_OTHER or RJ_ARR_FULL otherwise. */
static void split_plain_strings(rj_vm *vm, uint32_t slot, const uint8_t *p, const uint8_t *e)
{
    struct rj_arr_split *a = &vm->arr[slot];
    const uint8_t *s;
    size_t len;
    int first = 1, r;
    uint32_t n = 0;
    a->gen = vm->gen;
    while ((r = plain_strings_next(&p, e, &first, &s, &len)) == 1) {
        if (vm->arr_used + n == RJ_ARR_CAP) {
            a->first = RJ_ARR_FULL;
            return;
        }
        vm->arr_el[vm->arr_used + n++] = (struct rj_arr_el){s, len};
    }
    if (r < 0) {
        a->first = RJ_ARR_OTHER;
        return;
    }
    a->first = vm->arr_used;
    a->count = n;
    vm->arr_used += n;
}

/* raw_plain_string_in for the array in a slot, split once per event (many
 * rules ask one tags field for different strings). */
static int slot_plain_string_in(rj_vm *vm, uint32_t slot, const rj_value *rv, const uint8_t *n,
                                size_t nn)
{
    const uint8_t *p = vm->base + rv->off;
    const struct rj_arr_split *a = &vm->arr[slot];
    if (a->gen != vm->gen)
        split_plain_strings(vm, slot, p, p + rv->len);
    if (a->first == RJ_ARR_OTHER)
        return -1;
    if (a->first == RJ_ARR_FULL)
        return raw_plain_string_in(p, p + rv->len, n, nn);
    for (uint32_t i = a->first, end = a->first + a->count; i < end; i++)
        if (vm->arr_el[i].len == nn && rj_bytes_equal(vm->arr_el[i].s, n, nn))
            return 1;
    return 0;
}

/* The usual atom without the general machinery (see RJ_FAST_STR): 0 or 1,
 * or 2 when the value is not the usual kind (atom_eval then decides). */
static inline RJ_HOT uint8_t atom_fast(rj_vm *vm, const rj_atom *a)
{
    const rj_value *rv = &vm->row[a->a];
    const rj_cel *k = &vm->prog->consts[a->arg];
    int r;
    if (a->fast == RJ_FAST_STR) {
        if (rv->type != RJ_V_STRING || (rv->flags & RJ_VF_ESCAPED))
            return 2;
        const uint8_t *s = vm->base + rv->off;
        size_t n = rv->len;
        switch (a->op) {
        case RJ_OP_F_EQ: r = str_is(s, n, k); break;
        case RJ_OP_F_NE: r = !str_is(s, n, k); break;
        default: r = str_test(vm, a->op, s, n, k->n.ptr, k->len);
        }
    } else if (a->fast == RJ_FAST_STR_ESCAPED) {
        /* A plain value holds no such byte: it neither is, nor starts,
         * ends or contains the constant. */
        if (rv->type != RJ_V_STRING || (rv->flags & RJ_VF_ESCAPED))
            return 2;
        r = a->op == RJ_OP_F_NE;
    } else if (a->fast == RJ_FAST_BOOL) {
        if (rv->type != RJ_V_TRUE && rv->type != RJ_V_FALSE)
            return 2;
        r = ((rv->type == RJ_V_TRUE) == (k->n.i != 0)) == (a->op == RJ_OP_F_EQ);
    } else if (a->fast == RJ_FAST_IN_STRINGS) {
        if (rv->type != RJ_V_ARRAY)
            return 2;
        if ((r = slot_plain_string_in(vm, a->a, rv, k->n.ptr, k->len)) < 0)
            return 2;
    } else {
        int c;
        if (a->fast == RJ_FAST_INT && rv->type == RJ_V_INT)
            c = (rv->num.i > k->n.i) - (rv->num.i < k->n.i);
        else if (a->fast == RJ_FAST_DOUBLE && rv->type == RJ_V_DOUBLE && !isnan(rv->num.d))
            c = (rv->num.d > k->n.d) - (rv->num.d < k->n.d);
        else
            return 2;
        switch (a->op) {
        case RJ_OP_F_LT: r = c < 0; break;
        case RJ_OP_F_LE: r = c <= 0; break;
        case RJ_OP_F_GT: r = c > 0; break;
        default: r = c >= 0;
        }
    }
    return (uint8_t)(r ^ (a->negate != 0));
}

/* An atom on its own: the direct path when it has one and applies. */
static inline RJ_HOT uint8_t atom_eval_any(rj_vm *vm, const rj_atom *a)
{
    if (a->fast) {
        uint8_t r = atom_fast(vm, a);
        if (r != 2)
            return r;
    }
    return atom_eval(vm, a);
}

/* The container row of g for the array text p[0..n): bit j set for each
 * member string among its elements, or -1 unless the array holds only
 * plain strings (then its atoms are evaluated alone). */
static int64_t member_row(const rj_slot_cells *g, const uint8_t *p, uint32_t n)
{
    const uint8_t *e = p + n, *s;
    size_t len;
    int first = 1, r;
    uint32_t mask = 0;
    while ((r = plain_strings_next(&p, e, &first, &s, &len)) == 1) {
        for (uint32_t j = 0; j < g->n_member; j++) {
            if (g->member[j].len == len && rj_bytes_equal(g->member[j].n.ptr, s, len)) {
                mask |= 1u << j;
                break;
            }
        }
    }
    return r < 0 ? -1 : rj_cells_kind_row(g, RJ_ROW_CONTAINERS) + mask;
}

/* The row of cell group g for this event's value (-1: a value it does not
 * cover). The common kinds straight from the extracted value. */
static inline RJ_HOT int64_t cells_row_of(rj_vm *vm, const rj_slot_cells *g)
{
    const rj_value *rv = &vm->row[g->slot];
    rj_cel v;
    if (rv->type == RJ_V_INT && (uint64_t)rv->num.i - (uint64_t)g->int_lo < g->int_span)
        return g->int_rows[(uint64_t)rv->num.i - (uint64_t)g->int_lo];
    if (rv->type == RJ_V_DOUBLE && rv->num.d >= g->unit_lo && rv->num.d < g->unit_hi) {
        /* In range (so not NaN): the unit interval's row, if no threshold
         * lies in it. x - lo >= 0, so the cast truncates as floor does;
         * where the subtraction rounds up to the next interval, that one
         * holds the same row or none (a threshold between them). */
        uint32_t row = g->unit_rows[(size_t)(rv->num.d - g->unit_lo)];
        if (row != UINT32_MAX)
            return row;
    }
    if (rv->type == RJ_V_INT || (rv->type == RJ_V_DOUBLE && !isnan(rv->num.d))) {
        v.type = rv->type == RJ_V_INT ? RJ_C_INT : RJ_C_DOUBLE;
        v.n.i = rv->num.i; /* the union's bits, int or double */
        return rj_cells_num_row(g, &v);
    }
    if (rv->type == RJ_V_STRING && !(rv->flags & RJ_VF_ESCAPED)) {
        v.type = RJ_C_STR;
        v.len = rv->len;
        v.n.ptr = vm->base + rv->off;
        return rj_cells_str_row(g, &v);
    }
    switch (rv->type) {
    case RJ_V_FALSE: return rj_cells_kind_row(g, RJ_ROW_FALSE);
    case RJ_V_TRUE: return rj_cells_kind_row(g, RJ_ROW_TRUE);
    case RJ_V_NULL: return rj_cells_kind_row(g, RJ_ROW_NULL);
    case RJ_V_MISSING: return rj_cells_kind_row(g, RJ_ROW_MISSING);
    case RJ_V_ARRAY: case RJ_V_OBJECT:
        if (!g->n_member)
            return rj_cells_kind_row(g, RJ_ROW_CONTAINERS);
        return rv->type == RJ_V_ARRAY ? member_row(g, vm->base + rv->off, rv->len) : -1;
    }
    return rj_cells_row(g, slot_ref(vm, g->slot), rv->type);
}

/* Group gi's (g's) row for this event, also noted in cell_row (-1: none). */
static inline RJ_HOT int64_t cells_search(rj_vm *vm, uint32_t gi, const rj_slot_cells *g)
{
    int64_t row = cells_row_of(vm, g);
    vm->cell_row[gi] = row >= 0 ? (int32_t)row : -1;
    return row;
}

/* The groups' rows narrow the rule bitsets: possible, satisfied, any
 * true, all false, undecided (W words each, initialized by the caller). */
static inline RJ_HOT void cells_narrow(rj_vm *vm, const uint32_t W, uint64_t *pos, uint64_t *sat,
                                       uint64_t *any, uint64_t *allf, uint64_t *und)
{
    const rj_program *p = vm->prog;
    for (uint32_t gi = 0; gi < p->n_cells; gi++) {
        const rj_slot_cells *g = &p->cells[gi];
        if (!g->rows)
            continue;
        int64_t row = cells_search(vm, gi, g);
        if (row >= 0) {
            const uint64_t *b = g->bits + (size_t)row * RJ_CELL_SETS * W;
            for (uint32_t w = 0; w < W; w++) {
                pos[w] &= b[w];
                sat[w] &= b[W + w];
                any[w] |= b[2 * W + w];
                allf[w] &= b[3 * W + w];
            }
        } else {
            for (uint32_t w = 0; w < W; w++) {
                und[w] |= g->involved[w];
                sat[w] &= ~g->involved[w];
                allf[w] &= ~g->involved[w];
            }
        }
    }
}

/* Every field with cells, for this event: one search finds the row that
 * decides all of the field's table atoms and narrows the rule bitsets. A
 * value of a type the table does not cover leaves its atoms to be
 * evaluated one by one and the rules with conjuncts there undecided. */
static void fill_cells(rj_vm *vm)
{
    uint32_t W = vm->prog->n_words;
#if defined(__SSE2__)
    if (W == 2) { /* 65 to 128 rules: each bitset one vector register (as
                   * two-word arrays they lived on the stack: -1.4%) */
        const rj_program *p = vm->prog;
        const __m128i ones = _mm_set1_epi32(-1);
        __m128i pos = ones, sat = ones, any = _mm_setzero_si128(), allf = ones;
        __m128i und = _mm_setzero_si128();
        for (uint32_t gi = 0; gi < p->n_cells; gi++) {
            const rj_slot_cells *g = &p->cells[gi];
            if (!g->rows)
                continue;
            int64_t row = cells_search(vm, gi, g);
            if (row >= 0) {
                const __m128i *b = (const __m128i *)(const void *)(g->bits + (size_t)row * RJ_CELL_SETS * 2);
                pos = _mm_and_si128(pos, _mm_loadu_si128(b));
                sat = _mm_and_si128(sat, _mm_loadu_si128(b + 1));
                any = _mm_or_si128(any, _mm_loadu_si128(b + 2));
                allf = _mm_and_si128(allf, _mm_loadu_si128(b + 3));
            } else {
                __m128i inv = _mm_loadu_si128((const __m128i *)(const void *)g->involved);
                und = _mm_or_si128(und, inv);
                sat = _mm_andnot_si128(inv, sat);
                allf = _mm_andnot_si128(inv, allf);
            }
        }
        _mm_storeu_si128((__m128i *)(void *)vm->possible, pos);
        _mm_storeu_si128((__m128i *)(void *)vm->satisfied, sat);
        _mm_storeu_si128((__m128i *)(void *)vm->any_true, any);
        _mm_storeu_si128((__m128i *)(void *)vm->all_false, allf);
        _mm_storeu_si128((__m128i *)(void *)vm->undecided, und);
        return;
    }
#endif
    if (W == 1) { /* up to 64 rules: the bitsets in registers */
        uint64_t pos = ~0ULL, sat = ~0ULL, any = 0, allf = ~0ULL, und = 0;
        cells_narrow(vm, 1, &pos, &sat, &any, &allf, &und);
        vm->possible[0] = pos;
        vm->satisfied[0] = sat;
        vm->any_true[0] = any;
        vm->all_false[0] = allf;
        vm->undecided[0] = und;
        return;
    }
    rj_row_bits_start(vm->possible, W); /* satisfied, any_true, all_false follow it */
    memset(vm->undecided, 0, W * sizeof(uint64_t));
    cells_narrow(vm, W, vm->possible, vm->satisfied, vm->any_true, vm->all_false, vm->undecided);
}

/* A non-table atom's value for this event: evaluated on use, memoized if
 * more than one rule (or one tree twice) reads it. Inlined into the rule
 * loop with the direct paths; only the general atom_eval is a call. */
static inline RJ_HOT uint8_t atom_computed(rj_vm *vm, const rj_atom *a, uint32_t i)
{
    if (!a->shared)
        return atom_eval_any(vm, a);
    if (vm->atom_gen[i] != vm->gen) {
        vm->atom_val[i] = atom_eval_any(vm, a);
        vm->atom_gen[i] = vm->gen;
    }
    return vm->atom_val[i];
}

/* Memo group mi's rule bitsets for this event (RJ_CELL_SETS x n_words),
 * with the results of the atoms a rule may read alone noted for the rule
 * loop (atom_computed finds any other stale and evaluates it); NULL when
 * the value is none it can hold (not a plain string, too long, the memo
 * asleep): the rules it covers are then undecided, evaluated alone. Their
 * "satisfied" bits still say their cells' atoms are all true: the rule
 * loop then evaluates the rest of their atoms, memo atoms included (none
 * is in the cells). */
static inline const uint64_t *memo_bits(rj_vm *vm, uint32_t mi)
{
    const rj_program *p = vm->prog;
    if (!vm->vmemo[mi].awake)
        return NULL;
    const rj_memo_group *g = &p->memos[mi];
    rj_vmemo *m = &vm->vmemo[mi];
    const rj_value *rv = &vm->row[g->slot];
    if (rv->type != RJ_V_STRING || (rv->flags & RJ_VF_ESCAPED) || rv->len > RJ_VMEMO_MAX)
        return NULL;
    const uint8_t *s = vm->base + rv->off;
    int64_t found = rj_vmemo_find(m, s, rv->len);
    size_t at = (size_t)(found < 0 ? -1 - found : found);
    uint8_t *res = m->res + at * g->n_atoms;
    if (found < 0) {
        for (uint32_t j = 0; j < g->n_atoms; j++) /* also notes them (memo atoms are shared) */
            res[j] = atom_computed(vm, &p->atoms[g->atoms[j]], g->atoms[j]);
        rj_vmemo_fill(p, mi, m, (uint32_t)at, s, rv->len);
    } else {
        for (uint32_t i = 0; i < g->n_note; i++) { /* the others are read via the bits only */
            uint32_t j = g->note[i];
            vm->atom_val[g->atoms[j]] = res[j];
            vm->atom_gen[g->atoms[j]] = vm->gen;
        }
    }
    return m->bits + at * RJ_CELL_SETS * (p->n_words ? p->n_words : 1);
}

/* The memo groups narrow the rule bitsets fill_cells left in the VM
 * (by_cells 1), or start them. Returns whether the bitsets are to be
 * used: not when there are no cells and every memo is asleep (resting,
 * off, or without memory). Apart from fill_cells, whose loop keeps the
 * bitsets in registers. */
static int memo_narrow(rj_vm *vm, int by_cells)
{
    const rj_program *p = vm->prog;
    const uint32_t W = p->n_words;
    int awake = 0;
    if (!vm->vmemo && vm->vmemo_wanted) {
        vm->vmemo_wanted = 0;
        vm->vmemo = rj_vmemo_new(p);
    }
    if (vm->vmemo)
        for (uint32_t mi = 0; mi < p->n_memos; mi++)
            awake |= vm->vmemo[mi].awake = rj_vmemo_use(&vm->vmemo[mi]);
    if (!awake && !by_cells)
        return 0;
    uint64_t *pos = vm->possible, *sat = vm->satisfied, *any = vm->any_true,
             *allf = vm->all_false, *und = vm->undecided;
    if (!by_cells) {
        rj_row_bits_start(pos, W); /* satisfied, any_true, all_false follow it */
        memset(und, 0, W * sizeof(uint64_t));
    }
    for (uint32_t mi = 0; mi < p->n_memos; mi++) {
        const uint64_t *b = awake ? memo_bits(vm, mi) : NULL;
        const uint64_t *inv = p->memos[mi].involved;
        for (uint32_t w = 0; w < W; w++) {
            if (b) {
                pos[w] &= b[w];
                sat[w] &= b[W + w];
                any[w] |= b[2 * W + w];
                allf[w] &= b[3 * W + w];
            } else { /* the cells' atoms still count: see memo_bits */
                und[w] |= inv[w];
                allf[w] &= ~inv[w];
            }
        }
    }
    return 1;
}

/* An atom's value for this event: a table atom's from the row its field's
 * search found (evaluated alone if the value's type has no row), any other
 * computed. */
static inline RJ_HOT uint8_t atom_value(rj_vm *vm, uint32_t i)
{
    const rj_atom *a = &vm->prog->atoms[i];
    if (a->cells >= 0) {
        const rj_slot_cells *g = &vm->prog->cells[a->cells];
        int32_t row = vm->cell_row[a->cells];
        if (row >= 0)
            return g->rows[(size_t)row * g->n_atoms + (i - g->first_atom)];
    }
    return atom_computed(vm, a, i);
}

/* A rule's tree in three-valued logic: bit 0 true, bit 1 false, neither
 * 0. Returns 1 true, 0 false, -1 neither (the interpreter's error). */
static int decide_tree(rj_vm *vm, const int32_t *t, uint32_t n)
{
    uint8_t st[RJ_TREE_MAX_ATOMS];
    uint32_t sp = 0;
    for (uint32_t i = 0; i < n; i++) {
        int32_t x = t[i];
        if (x >= 0) {
            uint8_t v = atom_value(vm, (uint32_t)x);
            st[sp++] = v == 1 ? 1 : v == 0 ? 2 : 0;
            continue;
        }
        switch (x) {
        case RJ_TREE_AND:
            sp--;
            st[sp - 1] = (uint8_t)((st[sp - 1] & st[sp] & 1) | ((st[sp - 1] | st[sp]) & 2));
            break;
        case RJ_TREE_OR:
            sp--;
            st[sp - 1] = (uint8_t)(((st[sp - 1] | st[sp]) & 1) | (st[sp - 1] & st[sp] & 2));
            break;
        case RJ_TREE_NOT:
            st[sp - 1] = (uint8_t)((st[sp - 1] & 1) << 1 | (st[sp - 1] >> 1));
            break;
        case RJ_TREE_EXIT_FALSE:
            if (st[0] == 2)
                return 0;
            break;
        default: /* RJ_TREE_EXIT_TRUE */
            if (st[0] == 1)
                return 1;
        }
    }
    return st[0] == 1 ? 1 : st[0] == 2 ? 0 : -1;
}

uint32_t rj_vm_eval_event(rj_vm *vm, const rj_value *row, const uint8_t *base,
                          uint32_t *matched, uint64_t *err_counts)
{
    const rj_program *p = vm->prog;
    uint32_t n = 0;
    begin_event(vm, row, base);
    select_rules(vm);
    int by_tables = p->n_live_cells != 0;
    if (by_tables)
        fill_cells(vm);
    if (p->n_memos)
        by_tables = memo_narrow(vm, by_tables);
    for (uint32_t w = 0; w < p->n_words; w++) {
        uint64_t active = vm->active[w];
        /* Rules the cells decide outright (all their atoms in cells or memos):
         * true, false (dropped from active here), or, with an atom neither
         * and none deciding, the interpreter's error. */
        uint64_t by_bits = 0, true_bits = 0;
        if (by_tables) {
            uint64_t ors = active & p->table_or[w] & ~vm->undecided[w];
            active &= vm->possible[w] & ~(ors & ~vm->any_true[w] & vm->all_false[w]);
            by_bits = active & (p->table_and[w] | p->table_or[w]) & ~vm->undecided[w];
            true_bits = by_bits & ((p->table_and[w] & vm->satisfied[w]) |
                                   (p->table_or[w] & vm->any_true[w]));
        }
        uint64_t hits = 0; /* without stop rules: this word's matches, listed at its end */
        if (!p->any_stop) {
            /* The cells' verdicts as whole words, not a branch per rule
             * (which rules they decide changes from event to event). */
            for (uint64_t e = by_bits & ~true_bits; e; e &= e - 1)
                err_counts[w * 64 + (uint32_t)__builtin_ctzll(e)]++;
            hits = true_bits;
            active &= ~by_bits;
            by_bits = 0;
        }
        for (uint64_t bits = active; bits; bits &= bits - 1) {
            uint32_t r = w * 64 + (uint32_t)__builtin_ctzll(bits);
            const rj_rule_code *rc = &p->rules[r];
            uint64_t bit = bits & (0 - bits);
            if (by_bits & bit) {
                if (!(true_bits & bit)) {
                    err_counts[r]++;
                    continue;
                }
                matched[n++] = r;
                if (rc->stop)
                    return n;
                continue;
            }
            /* Decide from atoms when they settle it: for AND shapes one
             * false atom is false and all true is true; for OR shapes one
             * true atom is true and all false is false. Anything else (an
             * atom neither true nor false) runs the code, for exact error
             * semantics. */
            int decided = -1; /* -1 undecided, 0 false, 1 true */
            if (rc->shape == RJ_SHAPE_TREE) {
                decided = decide_tree(vm, p->tree + rc->tree_off, rc->tree_len);
                if (decided < 0) { /* the interpreter would give an error */
                    err_counts[r]++;
                    continue;
                }
            } else if (rc->shape == RJ_SHAPE_OR) {
                int all_false = 1;
                for (int a = 0; a < RJ_MAX_ATOMS && rc->pre[a] >= 0; a++) {
                    uint8_t v = atom_value(vm, (uint32_t)rc->pre[a]);
                    if (v == 1) {
                        decided = 1;
                        break;
                    }
                    all_false &= v == 0;
                }
                if (decided < 0 && all_false)
                    decided = 0;
            } else {
                int all_true = 1;
                const int32_t *pre =
                    by_tables && (vm->satisfied[w] & bit) ? rc->pre_computed : rc->pre;
                for (int a = 0; a < RJ_MAX_ATOMS && pre[a] >= 0; a++) {
                    uint8_t v = atom_value(vm, (uint32_t)pre[a]);
                    if (v == 0) {
                        decided = 0;
                        break;
                    }
                    all_true &= v == 1;
                }
                if (decided < 0 && all_true && rc->shape == RJ_SHAPE_AND)
                    decided = 1;
            }
            if (decided < 0) {
                rj_cel v = run(vm, p->rules[r].entry);
                if (v.type == RJ_C_ERR)
                    err_counts[r]++;
                decided = v.type == RJ_C_BOOL && v.n.i;
            }
            if (!decided)
                continue;
            if (!p->any_stop) {
                hits |= bit;
                continue;
            }
            matched[n++] = r;
            if (rc->stop)
                return n;
        }
        for (; hits; hits &= hits - 1)
            matched[n++] = w * 64 + (uint32_t)__builtin_ctzll(hits);
    }
    return n;
}

rj_cel rj_vm_eval_rule(rj_vm *vm, uint32_t rule, const rj_value *row, const uint8_t *base)
{
    begin_event(vm, row, base);
    return run(vm, vm->prog->rules[rule].entry);
}
