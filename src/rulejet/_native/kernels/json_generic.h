/* json_generic.h: the JSON path scanner and validator, written once.
 *
 * Including file defines RJ_KFN and RJ_SUFFIX (see lines_generic.h) and:
 *   RJ_KFN_OUTLINE  as RJ_KFN, but never inlined (rare paths kept out of
 *                   the member loop)
 *   RJ_SB_WIDTH     bytes rj_string_bits looks at (8, 16 or 32: most keys
 *                   and values are short, so a narrow first step is cheap)
 *   RJ_KFN uint64_t rj_string_bits(const uint8_t *p, uint64_t *high)
 *       for the RJ_SB_WIDTH bytes at p: bits of '"', '\\' and bytes < 0x20;
 *       *high gets the bits of bytes >= 0x80.
 *   RJ_KFN void rj_classify(const uint8_t *p, rj_blockmasks *m)
 *       quote, backslash, open ('{' '['), close ('}' ']') bits.
 *   RJ_KFN uint64_t rj_string_stops(const uint8_t *p)
 *       for the same bytes: bits of '"', '\\', bytes < 0x20 and bytes
 *       >= 0x80 (whatever stops a plain ASCII string).
 *   RJ_KFN void rj_small_classify(const uint8_t *p, rj_blockmasks *m)
 *       rj_classify for the RJ_SB_WIDTH bytes at p.
 *   RJ_KFN uint64_t rj_prefix_xor(uint64_t x)
 *       bit i = xor of bits 0..i (carry-less multiply by all-ones).
 *
 * Extraction walks the document by recursive descent, but only where the
 * path trie leads: a value no path enters is skipped. Strings are skipped
 * with rj_string_bits, 64 bytes a step; containers with rj_classify: the
 * simdjson stage-1 trick finds quotes that are not escaped (odd backslash
 * runs, find_escaped below), prefix-xor turns them into an "inside a
 * string" mask, and brackets outside strings are counted with popcount
 * until the depth returns to zero. A skipped container is checked only for
 * balanced brackets and closed strings; everything the scan traverses
 * (keys, the values it returns, the structure around them) is fully
 * validated, strings including escapes and UTF-8.
 *
 * Never reads outside [base + start, base + limit), where limit >= end is
 * how far the caller lets loads run (the NDJSON loop passes the buffer's
 * end, so only the buffer's last block needs a copy); blocks that would
 * cross the limit are copied into a padded 64-byte buffer first, and bits
 * past the document's end are masked off. Recursion depth
 * is bounded by the longest path (at most RJ_JSON_MAX_DEPTH); validation
 * is iterative.
 */
#include <string.h>

#include "../core/json_scalar.h"

#ifndef RJ_CAT
#define RJ_CAT2(a, b) a##b
#define RJ_CAT(a, b) RJ_CAT2(a, b)
#endif
#define RJ_F(name) RJ_CAT(name##_, RJ_SUFFIX)

#define RJ_NONE UINT32_MAX

typedef struct {
    const uint8_t *base, *end;
    const uint8_t *limit; /* loads may read up to here (>= end) */
    const rj_pathset *ps;
    rj_scan_scratch *scratch;
    rj_value *out;
    rj_json_err *err;
    /* One NDJSON line at a time with end at the buffer's end (the line's
     * newline not yet found): '\n' is then no whitespace, and skipped
     * containers stop at one, so nothing is read past the line. */
    int line_mode;
} RJ_F(rj_ctx);

typedef RJ_F(rj_ctx) rj_ctx_t;

static inline const uint8_t *rj_fail(rj_ctx_t *c, const uint8_t *at, const char *msg)
{
    c->err->offset = (uint64_t)(at - c->base);
    c->err->msg = msg;
    return NULL;
}

/* nl: '\n' where it is whitespace, ' ' where it ends the document. */
static inline const uint8_t *rj_ws_nl(const uint8_t *p, const uint8_t *end, uint8_t nl)
{
    /* Compact JSON has no whitespace: one compare settles the usual case. */
    while (p < end && *p <= ' ' && (*p == ' ' || *p == nl || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static inline const uint8_t *rj_ws(const uint8_t *p, const uint8_t *end)
{
    return rj_ws_nl(p, end, '\n');
}

#define RJ_WS(c, p) rj_ws_nl((p), (c)->end, (c)->line_mode ? ' ' : '\n')

static inline int rj_is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* rj_string_bits for the last avail (< RJ_SB_WIDTH) bytes before the
 * load limit, padded with plain bytes. Out of line: inlined, its padding
 * is filled on every long string's way in. */
RJ_KFN_OUTLINE uint64_t RJ_F(rj_string_bits_tail)(const uint8_t *p, size_t avail, uint64_t *high)
{
    uint8_t tmp[RJ_SB_WIDTH];
    memset(tmp, 'a', sizeof tmp);
    memcpy(tmp, p, avail);
    return rj_string_bits(tmp, high);
}

/* p is just after an opening quote. Returns the closing quote, or NULL. */
RJ_KFN __attribute__((always_inline)) const uint8_t *RJ_F(rj_scan_string)(rj_ctx_t *c, const uint8_t *p, uint8_t *flags)
{
    const uint8_t *start = p, *end = c->end;
    uint64_t any_high = 0;
    for (;;) {
        uint64_t bits, high;
        if (p >= end)
            return rj_fail(c, start - 1, "unterminated string");
        size_t avail = (size_t)(c->limit - p);
        if (avail >= RJ_SB_WIDTH)
            bits = rj_string_bits(p, &high);
        else
            bits = RJ_F(rj_string_bits_tail)(p, avail, &high);
        if (!bits) {
            any_high |= high;
            p += RJ_SB_WIDTH;
            continue;
        }
        unsigned at = (unsigned)__builtin_ctzll(bits);
        any_high |= high & ((1ULL << at) - 1);
        const uint8_t *q = p + at;
        /* Past the document's end (its '\n', or the next line's bytes when
         * loads may read ahead): the string never closed. */
        if (q >= end)
            return rj_fail(c, start - 1, "unterminated string");
        if (*q == '"') {
            if (any_high) {
#ifdef RJ_UTF8_VALID /* the kernel's yes; on no, the scalar check says where */
                if (RJ_UTF8_VALID(start, q, c->limit))
                    return q;
#endif
                size_t bad = rj_utf8_check(start, (size_t)(q - start));
                if (bad != (size_t)(q - start))
                    return rj_fail(c, start + bad, "invalid UTF-8 in string");
            }
            return q;
        }
        if (*q != '\\')
            return rj_fail(c, q, "control character in string");
        *flags |= RJ_VF_ESCAPED;
        if (end - q < 2)
            return rj_fail(c, start - 1, "unterminated string");
        switch (q[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p = q + 2;
            break;
        case 'u':
            if (end - q < 6 || !rj_is_hex(q[2]) || !rj_is_hex(q[3]) || !rj_is_hex(q[4]) ||
                !rj_is_hex(q[5]))
                return rj_fail(c, q, "invalid \\u escape");
            p = q + 6;
            break;
        default:
            return rj_fail(c, q, "invalid escape in string");
        }
    }
}

/* The usual string: plain ASCII that closes within one rj_string_stops
 * step. Its closing quote, or NULL for anything else (rj_scan_string
 * then scans, checks and reports). p is just after the opening quote. */
RJ_KFN __attribute__((always_inline)) const uint8_t *RJ_F(rj_short_string)(const rj_ctx_t *c,
                                                                          const uint8_t *p)
{
    uint64_t stops;
    /* Loads may run to the limit (past the document's end, near a line's
     * end); a quote found there is not this string's end. */
    if ((size_t)(c->limit - p) < RJ_SB_WIDTH || !(stops = rj_string_stops(p)))
        return NULL;
    /* Nothing but plain bytes up to the first quote: it is the first stop. */
    const uint8_t *q = p + __builtin_ctzll(stops);
    return *q == '"' && q < c->end ? q : NULL;
}

/* Backslashes that escape the next byte: the odd-length runs' last ones.
 * From simdjson (find_escaped_branchless): runs starting on even and odd
 * bits are separated by adding the run starts to the backslash mask, and
 * the carry of that add says whether the block's last backslash escapes
 * the first byte of the next block. Returns the escaped bytes' bits. */
static inline uint64_t rj_find_escaped(uint64_t bs, uint64_t *prev_escaped)
{
    const uint64_t even = 0x5555555555555555ULL;
    bs &= ~*prev_escaped;
    uint64_t follows_escape = bs << 1 | *prev_escaped;
    uint64_t odd_starts = bs & ~even & ~follows_escape;
    uint64_t seq_even;
    *prev_escaped = __builtin_add_overflow(odd_starts, bs, &seq_even);
    uint64_t invert = seq_even << 1;
    return (even ^ invert) & follows_escape;
}

/* The skip loop, written once for rj_skip_container (n_keys 0: any text)
 * and rj_skip_rest (keys: give up, returning NULL without an error, at a
 * backslash or a quoted candidate of one of them before the end). Inlined
 * into both, so the first has no trace of the second's tests. */
static inline __attribute__((always_inline)) const uint8_t *
RJ_F(rj_skip_scan)(rj_ctx_t *c, const uint8_t *p, int64_t depth, const rj_edge *const *keys,
                   uint32_t n_keys)
{
    const uint8_t *start = p, *end = c->end;
    uint64_t prev_escaped = 0, in_string = 0, quote_carry = 0;
    for (; p < end; p += 64) {
        rj_blockmasks m;
        const uint8_t *blk = p;
        uint8_t tmp[64];
        if ((size_t)(c->limit - p) < 64) {
            memset(tmp, ' ', sizeof tmp);
            memcpy(tmp, p, (size_t)(c->limit - p));
            blk = tmp;
        }
        rj_classify(blk, &m);
        if (end - p < 64) { /* bytes past the document are not ours */
            uint64_t keep = (1ULL << (end - p)) - 1;
            m.quote &= keep;
            m.bslash &= keep;
            m.open &= keep;
            m.close &= keep;
        }
        uint64_t escaped = rj_find_escaped(m.bslash, &prev_escaped);
        uint64_t quotes = m.quote & ~escaped;
        uint64_t in_str = rj_prefix_xor(quotes) ^ in_string;
        in_string = (uint64_t)((int64_t)in_str >> 63); /* carry to next block */
        uint64_t opens = m.open & ~in_str, closes = m.close & ~in_str;
        /* The bit where depth reaches zero in this block, if it does. */
        int z = -1;
        int64_t n_close = __builtin_popcountll(closes);
        if (depth > n_close) { /* depth cannot reach zero inside this block */
            depth += __builtin_popcountll(opens) - n_close;
        } else {
            for (uint64_t bits = opens | closes; bits; bits &= bits - 1) {
                if (opens & bits & (0 - bits)) {
                    depth++;
                } else if (--depth == 0) {
                    z = __builtin_ctzll(bits);
                    break;
                }
            }
        }
        /* Bits past the end belong to what follows the object. */
        uint64_t upto = z < 0 || z == 63 ? ~0ULL : (2ULL << z) - 1;
        /* A line's newline inside: the value runs past its line. */
        if (c->line_mode && (rj_block_mask(blk, '\n') & upto))
            return n_keys ? NULL : rj_fail(c, p, "newline inside a value");
        if (n_keys) {
            if (m.bslash & upto)
                return NULL;
            uint64_t after_quote = (m.quote << 1 | quote_carry) & upto;
            quote_carry = m.quote >> 63;
            for (uint32_t k = 0; k < n_keys; k++) {
                const char *key = c->ps->keys + keys[k]->key_off;
                size_t kl = keys[k]->key_len;
                uint64_t cand = after_quote & rj_block_mask(blk, (uint8_t)key[0]);
                for (; cand; cand &= cand - 1) {
                    const uint8_t *q = p + __builtin_ctzll(cand);
                    if ((size_t)(end - q) > kl && q[kl] == '"' &&
                        rj_bytes_equal(q, (const uint8_t *)key, kl))
                        return NULL;
                }
            }
        }
        if (z >= 0)
            return p + z + 1;
    }
    return n_keys ? NULL : rj_fail(c, start, "unterminated array or object");
}

/* Skip to just past the bracket that brings depth (brackets already open
 * before p, outside any string) to zero. p must be outside a string. */
RJ_KFN const uint8_t *RJ_F(rj_skip_container)(rj_ctx_t *c, const uint8_t *p, int64_t depth)
{
    return RJ_F(rj_skip_scan)(c, p, depth, NULL, 0);
}

/* A container that closes within one RJ_SB_WIDTH window with nothing
 * nested and no backslash before its end (["web"], {"lat":1,"lon":2}):
 * its end from one classify, without rj_skip_container's block loop.
 * NULL for anything else. p is at the opening bracket. Like
 * rj_skip_container it only finds the end (skipped text is not checked):
 * both give the same end, so the kernels agree whatever the width. */
RJ_KFN __attribute__((always_inline)) const uint8_t *RJ_F(rj_skip_small)(const rj_ctx_t *c,
                                                                        const uint8_t *p)
{
    if ((size_t)(c->limit - p) < RJ_SB_WIDTH)
        return NULL;
    rj_blockmasks m;
    rj_small_classify(p, &m);
    uint64_t in_str = rj_prefix_xor(m.quote); /* right while no backslash precedes */
    uint64_t closes = m.close & ~in_str;
    if ((size_t)(c->end - p) < RJ_SB_WIDTH) /* bytes past the document are not ours */
        closes &= (1ULL << (c->end - p)) - 1;
    uint64_t first = closes & (0 - closes), before = first - 1;
    if (!first || (m.bslash & before) || (m.open & ~in_str & before & ~1ULL))
        return NULL;
    if (c->line_mode) { /* a control byte before the end may be the line's newline */
        uint64_t high;
        if (rj_string_bits(p, &high) & ~m.quote & before)
            return NULL;
    }
    return p + __builtin_ctzll(first) + 1;
}

/* Validate a number at p; if v, store its value. Returns the end. The
 * general grammar, out of line (rj_number inlines the usual kinds). */
RJ_KFN_OUTLINE const uint8_t *RJ_F(rj_number_general)(rj_ctx_t *c, const uint8_t *p, rj_value *v)
{
    int is_int;
    const uint8_t *bad, *s = p;
    const char *why;
    p = rj_number_scan(p, c->end, &is_int, &bad, &why);
    if (!p)
        return rj_fail(c, bad, why);
    if (!v)
        return p;
    v->off = (uint64_t)(s - c->base);
    v->len = (uint32_t)(p - s);
    if (is_int && rj_number_int64(s, p, &v->num.i)) {
        rj_value_set_tag(v, RJ_V_INT, 0);
        return p;
    }
    rj_value_set_tag(v, is_int ? RJ_V_BIGINT : RJ_V_DOUBLE, 0);
    v->num.d = rj_number_to_double(s, (size_t)(p - s));
    return p;
}

/* A wanted number of the usual kinds in one fused pass (inlined); the
 * rest, and unwanted numbers, through rj_number_general. */
RJ_KFN __attribute__((always_inline)) const uint8_t *RJ_F(rj_number)(rj_ctx_t *c, const uint8_t *p,
                                                                     rj_value *v)
{
    const uint8_t *f;
    if (v && (f = rj_number_fused(p, c->end, v))) {
        v->off = (uint64_t)(p - c->base);
        v->len = (uint32_t)(f - p);
        return f;
    }
    return RJ_F(rj_number_general)(c, p, v);
}

RJ_KFN const uint8_t *RJ_F(rj_literal)(rj_ctx_t *c, const uint8_t *p, rj_value *v)
{
    static const char *const words[] = {"null", "false", "true"};
    static const uint8_t types[] = {RJ_V_NULL, RJ_V_FALSE, RJ_V_TRUE};
    int w = *p == 'n' ? 0 : *p == 'f' ? 1 : 2;
    size_t n = w == 1 ? 5 : 4;
    /* The word's last four bytes as one load ("false": its 'f' is *p). */
    uint32_t got, want;
    if ((size_t)(c->end - p) < n)
        return rj_fail(c, p, "invalid literal");
    memcpy(&got, p + n - 4, 4);
    memcpy(&want, words[w] + n - 4, 4);
    if (got != want)
        return rj_fail(c, p, "invalid literal");
    if (v) {
        rj_value_set_tag(v, types[w], 0);
        v->off = (uint64_t)(p - c->base);
        v->len = (uint32_t)n;
    }
    return p + n;
}

#ifndef RJ_LOW_BYTES
static inline uint64_t rj_low_bytes(uint64_t x, size_t n) /* x's low n bytes (n <= 8) */
{
    static const uint64_t keep[9] = {0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffffULL,
                                     0xffffffffffffULL, 0xffffffffffffffULL, ~0ULL};
    return x & keep[n];
}
#define RJ_LOW_BYTES(x, n) rj_low_bytes((x), (n))
#define RJ_LOW_BYTES_SHORT(x, n) rj_low_bytes((x), (n) < 8 ? (n) : 8) /* n < 32 */
#endif

/* The key table probe: head is the key's first 8 bytes, zero-padded. */
RJ_KFN __attribute__((always_inline)) uint32_t
rj_probe_key(const rj_node *n, const uint8_t *k, size_t len, uint64_t head)
{
    const rj_key_entry *tab = n->key_tab;
    for (uint32_t h = rj_key_hash(head, n->key_tab_shift);; h = (h + 1) & n->key_tab_mask) {
        const rj_key_entry *en = &tab[h];
        if (en->head == head && en->len == len &&
            (len <= 8 ||
             rj_bytes_equal(k + 8, (const uint8_t *)n->key_tab_text[h] + 8, len - 8)))
            return en->child;
        if (en->len == UINT32_MAX)
            return RJ_NONE;
    }
}

/* An unescaped key of len < RJ_SB_WIDTH bytes, with 8 bytes loadable at k,
 * in an object of node n (which has key edges: rj_object is entered only
 * then). The key's first 8 bytes: a shorter key's load runs on into the
 * closing quote and beyond, masked off. */
RJ_KFN __attribute__((always_inline)) uint32_t
rj_lookup_plain(const rj_node *n, const uint8_t *k, size_t len)
{
    uint64_t head;
    memcpy(&head, k, 8);
    head = RJ_LOW_BYTES_SHORT(head, len); /* the key's own bytes only */
    return rj_probe_key(n, k, len, head);
}

RJ_KFN uint32_t rj_lookup_key(const rj_ctx_t *c, const rj_node *n, const uint8_t *k,
                                     size_t len, uint8_t flags)
{
    const rj_pathset *ps = c->ps;
    if (flags & RJ_VF_ESCAPED) {
        /* The raw bytes are not the key's: compare with every wanted key. */
        for (uint32_t e = n->first_edge; e != RJ_NONE; e = ps->edges[e].next) {
            const rj_edge *ed = &ps->edges[e];
            if (ed->kind != RJ_STEP_INDEX &&
                rj_escaped_equals(k, len, ps->keys + ed->key_off, ed->key_len))
                return ed->child;
        }
        return RJ_NONE;
    }
    if (!n->key_tab_bits)
        return RJ_NONE;
    uint64_t head = 0;
    if (len >= 8 || (size_t)(c->limit - k) >= 8) {
        memcpy(&head, k, 8);
        head = RJ_LOW_BYTES(head, len < 8 ? len : 8);
    } else {
        memcpy(&head, k, len); /* too near the load limit for a whole word */
    }
    return rj_probe_key(n, k, len, head);
}

static inline uint32_t rj_lookup_index(const rj_ctx_t *c, const rj_node *n, uint64_t idx)
{
    const rj_pathset *ps = c->ps;
    for (uint32_t e = n->first_edge; e != RJ_NONE; e = ps->edges[e].next) {
        const rj_edge *ed = &ps->edges[e];
        if (ed->kind != RJ_STEP_KEY && ed->index == idx)
            return ed->child;
    }
    return RJ_NONE;
}

RJ_KFN const uint8_t *RJ_F(rj_value_at)(rj_ctx_t *c, uint32_t node, const uint8_t *p);
RJ_KFN const uint8_t *RJ_F(rj_object)(rj_ctx_t *c, uint32_t node, const uint8_t *p);
RJ_KFN const uint8_t *RJ_F(rj_array)(rj_ctx_t *c, uint32_t node, const uint8_t *p);

/* Parse or skip the value at p for graph node `node` (RJ_NONE: unwanted).
 * The value is written straight into the node's first slot (building it
 * in a local and copying it whole stalls store forwarding), then copied to
 * any other slot the node fills (when different spellings meet). */
RJ_KFN __attribute__((always_inline)) const uint8_t *RJ_F(rj_value_body)(rj_ctx_t *c, uint32_t node,
                                                                        const uint8_t *p)
{
    /* p < c->end: the callers check (the compact member path knows). */
    const rj_node *n = node == RJ_NONE ? NULL : &c->ps->nodes[node];
    rj_value *v = NULL;
    if (n && n->first_slot >= 0)
        v = &c->out[n->first_slot];
    const uint8_t *e;
    uint8_t ch = *p;
    /* Tests in order of frequency (a jump table's indirect branch
     * mispredicts more on mixed members). */
    if (ch == '"') {
        uint8_t flags = 0;
        const uint8_t *q = RJ_F(rj_short_string)(c, p + 1);
        if (!q && !(q = RJ_F(rj_scan_string)(c, p + 1, &flags)))
            return NULL;
        if (v) {
            rj_value_set_tag(v, RJ_V_STRING, flags);
            v->off = (uint64_t)(p + 1 - c->base);
            v->len = (uint32_t)(q - p - 1);
        }
        e = q + 1;
    } else if ((ch >= '0' && ch <= '9') || ch == '-') {
        e = RJ_F(rj_number)(c, p, v);
    } else if ((ch | 0x20) == '{') { /* '{' or '[' */
        int obj = ch == '{';
        if (n && (obj ? n->has_key_edges : n->has_index_edges))
            e = obj ? RJ_F(rj_object)(c, node, p) : RJ_F(rj_array)(c, node, p);
        else if (!(e = RJ_F(rj_skip_small)(c, p)))
            e = RJ_F(rj_skip_container)(c, p, 0);
        if (e && v) {
            rj_value_set_tag(v, obj ? RJ_V_OBJECT : RJ_V_ARRAY, 0);
            v->off = (uint64_t)(p - c->base);
            v->len = (uint32_t)(e - p);
        }
    } else if (ch == 't' || ch == 'f' || ch == 'n') {
        e = RJ_F(rj_literal)(c, p, v);
    } else {
        return rj_fail(c, p, "expected a value");
    }
    if (v && n->n_term > 1 && e) {
        const uint32_t *slots = c->ps->slot_lists + n->term_off;
        for (uint32_t i = 1; i < n->n_term; i++)
            c->out[slots[i]] = *v;
    }
    return e;
}

/* The value body as a function: for arrays, the root and containers' own
 * recursion. Object members inline the body (most are scalars: no call). */
RJ_KFN const uint8_t *RJ_F(rj_value_at)(rj_ctx_t *c, uint32_t node, const uint8_t *p)
{
    if (p >= c->end)
        return rj_fail(c, p, "expected a value");
    return RJ_F(rj_value_body)(c, node, p);
}


/* Every wanted key of this object has been seen and more members follow
 * (p is just after a comma). If no wanted key can occur in the rest (its
 * text never contains one quoted, and holds no backslash that could spell
 * one with escapes), a later duplicate is impossible: skip the rest like
 * an unwanted subtree. One pass does it all: each 64-byte block is
 * classified once for the skip (bracket depth outside strings), the
 * backslash test, and the quoted-key candidates (a wanted key's first
 * byte right after a quote). Returns the end of the object, or NULL to
 * parse the rest member by member. */
#define RJ_REST_MAX_KEYS 8
#define RJ_REST_AFTER 2 /* members parsed after the last wanted key before trying */
/* Out of line: inlined, its block loop crowds the member loop's registers. */
RJ_KFN_OUTLINE const uint8_t *RJ_F(rj_skip_rest)(rj_ctx_t *c, const rj_node *n, const uint8_t *p)
{
    const rj_pathset *ps = c->ps;
    const rj_edge *keys[RJ_REST_MAX_KEYS];
    uint32_t n_keys = 0;
    for (uint32_t i = n->first_edge; i != RJ_NONE; i = ps->edges[i].next) {
        const rj_edge *ed = &ps->edges[i];
        if (ed->kind != RJ_STEP_KEY)
            continue;
        if (n_keys == RJ_REST_MAX_KEYS || !ed->key_len)
            return NULL; /* too many to test in one pass; "" is too cheap to rule out */
        keys[n_keys++] = ed;
    }
    /* Malformed or unterminated text also gives NULL: the member-by-member
     * parse then says where. */
    return n_keys ? RJ_F(rj_skip_scan)(c, p, 1, keys, n_keys) : NULL;
}

#ifndef RJ_MEMO_HELPERS
#define RJ_MEMO_HELPERS
/* Whether the 16 bytes at p (loadable) begin with m's pattern. */
static inline __attribute__((always_inline)) int rj_memo_equal(const rj_key_memo *m,
                                                               const uint8_t *p)
{
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    return !(((a ^ m->lo) & ~m->skip_lo) | ((b ^ m->hi) & ~m->skip_hi));
}

/* Remember the plain key at p ('"' key '"' ':', len bytes in all, at
 * most 16, all before the document's end) as leading to child. */
static inline void rj_memo_set(rj_key_memo *m, const uint8_t *p, size_t len, uint32_t child)
{
    uint8_t text[16] = {0};
    memcpy(text, p, len);
    memcpy(&m->lo, text, 8);
    memcpy(&m->hi, text + 8, 8);
    m->skip_lo = len >= 8 ? 0 : ~((1ULL << (len * 8)) - 1);
    m->skip_hi = len >= 16 ? 0 : len <= 8 ? ~0ULL : ~((1ULL << ((len - 8) * 8)) - 1);
    m->len = (uint32_t)len;
    m->child = child;
    m->misses = 0;
}
#endif

RJ_KFN const uint8_t *RJ_F(rj_object)(rj_ctx_t *c, uint32_t node, const uint8_t *p)
{
    const rj_node *n = &c->ps->nodes[node];
    const uint8_t *end = c->end;
    /* Wanted keys met so far (a duplicate may recount: harmless), then
     * members since the last of them. */
    uint32_t found = 0;
    /* The memo entry of the next member's position (the last one serves
     * every position past it: a key's child is the same at any position). */
    rj_key_memo *next_memo = c->scratch->memo + (size_t)node * RJ_MEMO_WAYS;
    rj_key_memo *const last_memo = next_memo + RJ_MEMO_WAYS - 1;
    if (++p >= end || *p != '"') { /* compact JSON: the first key's quote */
        p = RJ_WS(c, p);
        if (p < end && *p == '}')
            return p + 1;
    }
    for (;;) {
        if (p >= end || *p != '"') {
            /* Compact JSON has the quote right after the comma: only
             * other text looks for whitespace here. */
            p = RJ_WS(c, p);
            if (p >= end || *p != '"')
                return rj_fail(c, p, "expected a string key");
        }
        uint32_t child;
        rj_key_memo *m = next_memo;
        next_memo += m != last_memo;
        /* 16 bytes before the end: both loads inside, and a value after. */
        if ((size_t)(end - p) > 16 && rj_memo_equal(m, p) && p[m->len] > ' ') {
            /* The key this position had before: no scan, no probe. */
            child = m->child;
            m->misses = 0;
            p += m->len;
            goto value;
        }
        const uint8_t *k = p + 1, *q = RJ_F(rj_short_string)(c, k);
        uint8_t flags = 0;
        if (q) {
            child = rj_lookup_plain(n, k, (size_t)(q - k));
        } else {
            q = RJ_F(rj_scan_string)(c, k, &flags);
            if (!q)
                return NULL;
            child = rj_lookup_key(c, n, k, (size_t)(q - k), flags);
        }
        if (q + 2 < end && q[1] == ':' && q[2] > ' ') { /* compact "key":value */
            /* A new key here (twice in a row: one reordered document
             * leaves the usual order in place). */
            if (!flags && q + 2 - p <= 16 && ++m->misses >= 2)
                rj_memo_set(m, p, (size_t)(q + 2 - p), child);
            p = q + 2;
        } else {
            p = RJ_WS(c, q + 1);
            if (p >= end || *p != ':')
                return rj_fail(c, p, "expected ':' after key");
            p = RJ_WS(c, p + 1);
            if (p >= end)
                return rj_fail(c, p, "expected a value");
        }
    value:
        if (child == RJ_NONE) {
            /* A constant node: the skip-only body, no slot tests. */
            p = RJ_F(rj_value_body)(c, RJ_NONE, p);
        } else {
            /* A duplicate key: the last one wins, so forget what the
             * earlier one set under this child. (A leaf's own slots are
             * simply overwritten: only slots below need the marks.) */
            const rj_node *ch = &c->ps->nodes[child];
            if (ch->n_reset > ch->n_term) {
                if (c->scratch->seen[child] == c->scratch->gen) {
                    const uint32_t *slots = c->ps->slot_lists + ch->reset_off;
                    for (uint32_t i = 0; i < ch->n_reset; i++)
                        memset(&c->out[slots[i]], 0, sizeof(rj_value));
                }
                c->scratch->seen[child] = c->scratch->gen;
            }
            found++;
            p = RJ_F(rj_value_body)(c, child, p);
        }
        if (!p)
            return NULL;
        if (p < end && *p == ',') { /* compact: no whitespace before either */
            p++;
        } else if (p < end && *p == '}') {
            return p + 1;
        } else if ((p = RJ_WS(c, p)) < end && *p == ',') {
            p++;
        } else if (p < end && *p == '}') {
            return p + 1;
        } else {
            return rj_fail(c, p, "expected ',' or '}' in object");
        }
        /* Every wanted key seen: once a few more members have followed,
         * skip the rest in one pass if no wanted key can occur in it. Not
         * at once: most objects end within a few members, which cost less
         * than the pass's set-up. */
        if (found >= n->n_key_edges && ++found >= n->n_key_edges + RJ_REST_AFTER) {
            const uint8_t *rest = RJ_F(rj_skip_rest)(c, n, p);
            if (rest)
                return rest;
            found = 0; /* a wanted key may follow: don't retry every member */
        }
    }
}

RJ_KFN const uint8_t *RJ_F(rj_array)(rj_ctx_t *c, uint32_t node, const uint8_t *p)
{
    const rj_node *n = &c->ps->nodes[node];
    const uint8_t *end = c->end;
    p = RJ_WS(c, p + 1);
    if (p < end && *p == ']')
        return p + 1;
    for (uint64_t idx = 0;; idx++) {
        p = RJ_F(rj_value_at)(c, rj_lookup_index(c, n, idx), p);
        if (!p)
            return NULL;
        p = RJ_WS(c, p);
        if (p < end && *p == ',') {
            p = RJ_WS(c, p + 1);
            /* Past the last wanted index: skip the rest in one go. */
            if (idx >= n->max_index)
                return RJ_F(rj_skip_container)(c, p, 1);
            continue;
        }
        if (p < end && *p == ']')
            return p + 1;
        return rj_fail(c, p, "expected ',' or ']' in array");
    }
}

/* A fresh row and fresh seen-marks for the next document. */
static inline void rj_extract_begin(const rj_pathset *ps, rj_scan_scratch *scratch, rj_value *out)
{
    memset(out, 0, ps->n_slots * sizeof(rj_value));
    if (++scratch->gen == 0) { /* wrapped: old marks could look current */
        memset(scratch->seen, 0, ps->n_nodes * sizeof(uint32_t));
        scratch->gen = 1;
    }
}

/* The document's value at p; the usual root, an object searched for
 * keys, goes straight into the member loop. */
static inline const uint8_t *RJ_F(rj_extract_root)(rj_ctx_t *c, const uint8_t *p)
{
    const rj_node *root = &c->ps->nodes[0];
    if (*p == '{' && root->has_key_edges && root->first_slot < 0)
        return RJ_F(rj_object)(c, 0, p);
    return RJ_F(rj_value_at)(c, 0, p);
}

RJ_KFN int RJ_F(rj_json_extract)(const rj_pathset *ps, rj_scan_scratch *scratch,
                                 const uint8_t *base, size_t start, size_t end,
                                 size_t limit, rj_value *out, rj_json_err *err)
{
    if (end - start > UINT32_MAX) {
        err->offset = start;
        err->msg = "document larger than 4 GiB";
        return RJ_ETOOBIG;
    }
    rj_extract_begin(ps, scratch, out);
    rj_ctx_t c = {base, base + end, base + (limit > end ? limit : end), ps, scratch, out, err, 0};
    const uint8_t *p = rj_ws(base + start, c.end);
    if (p >= c.end) {
        rj_fail(&c, p, "empty document");
        return RJ_EJSON;
    }
    if (!(p = RJ_F(rj_extract_root)(&c, p)))
        return RJ_EJSON;
    p = rj_ws(p, c.end);
    if (p != c.end) {
        rj_fail(&c, p, "unexpected data after the JSON value");
        return RJ_EJSON;
    }
    return 0;
}

/* rj_json_extract for the NDJSON line starting at base + start, its end
 * not yet known (len: the buffer's end, which loads may reach). The line
 * is scanned once, its newline found where the document ends (a separate
 * newline pass costs another read of every byte). 0 with *line_end at
 * the line's '\n' (or len); RJ_EJSON for anything else, malformed lines
 * included, with *err unset: the caller then finds the newline and runs
 * rj_json_extract on the line, which gives the same values and the error
 * with its position. */
RJ_KFN int RJ_F(rj_json_extract_line)(const rj_pathset *ps, rj_scan_scratch *scratch,
                                      const uint8_t *base, size_t start, size_t len,
                                      rj_value *out, size_t *line_end)
{
    rj_json_err unused;
    rj_extract_begin(ps, scratch, out);
    rj_ctx_t c = {base, base + len, base + len, ps, scratch, out, &unused, 1};
    const uint8_t *p = RJ_WS(&c, base + start);
    if (p >= c.end || *p == '\n')
        return RJ_EJSON;
    if (!(p = RJ_F(rj_extract_root)(&c, p)))
        return RJ_EJSON;
    p = RJ_WS(&c, p);
    if ((p < c.end && *p != '\n') || (size_t)(p - base) - start > UINT32_MAX)
        return RJ_EJSON;
    *line_end = (size_t)(p - base);
    return 0;
}

RJ_KFN int RJ_F(rj_json_validate)(const uint8_t *base, size_t start, size_t end,
                                  rj_json_err *err)
{
    rj_ctx_t c = {base, base + end, base + end, NULL, NULL, NULL, err, 0};
    const uint8_t *p = rj_ws(base + start, c.end), *e = c.end;
    uint8_t stack[RJ_JSON_MAX_DEPTH]; /* '{' or '[' per open container */
    size_t depth = 0;
    if (p >= e) {
        rj_fail(&c, p, "empty document");
        return RJ_EJSON;
    }
value:
    if (p >= e)
        goto fail_value;
    switch (*p) {
    case '{':
    case '[':
        if (depth == RJ_JSON_MAX_DEPTH) {
            rj_fail(&c, p, "nesting deeper than 1024 levels");
            return RJ_EDEPTH;
        }
        stack[depth++] = *p;
        p = rj_ws(p + 1, e);
        if (p < e && *p == (stack[depth - 1] == '{' ? '}' : ']')) {
            depth--;
            p++;
            goto after;
        }
        if (stack[depth - 1] == '{')
            goto key;
        goto value;
    case '"': {
        uint8_t flags = 0;
        const uint8_t *q = RJ_F(rj_scan_string)(&c, p + 1, &flags);
        if (!q)
            return RJ_EJSON;
        p = q + 1;
        goto after;
    }
    case 't': case 'f': case 'n':
        p = RJ_F(rj_literal)(&c, p, NULL);
        break;
    default:
        if (*p != '-' && (*p < '0' || *p > '9'))
            goto fail_value;
        p = RJ_F(rj_number)(&c, p, NULL);
    }
    if (!p)
        return RJ_EJSON;
after:
    p = rj_ws(p, e);
    if (!depth) {
        if (p == e)
            return 0;
        rj_fail(&c, p, "unexpected data after the JSON value");
        return RJ_EJSON;
    }
    if (p < e && *p == ',') {
        p = rj_ws(p + 1, e);
        if (stack[depth - 1] == '{')
            goto key;
        goto value;
    }
    if (p < e && *p == (stack[depth - 1] == '{' ? '}' : ']')) {
        depth--;
        p++;
        goto after;
    }
    rj_fail(&c, p, stack[depth - 1] == '{' ? "expected ',' or '}' in object"
                                            : "expected ',' or ']' in array");
    return RJ_EJSON;
key:
    if (p >= e || *p != '"') {
        rj_fail(&c, p, "expected a string key");
        return RJ_EJSON;
    }
    {
        uint8_t flags = 0;
        const uint8_t *q = RJ_F(rj_scan_string)(&c, p + 1, &flags);
        if (!q)
            return RJ_EJSON;
        p = rj_ws(q + 1, e);
    }
    if (p >= e || *p != ':') {
        rj_fail(&c, p, "expected ':' after key");
        return RJ_EJSON;
    }
    p = rj_ws(p + 1, e);
    goto value;
fail_value:
    rj_fail(&c, p, "expected a value");
    return RJ_EJSON;
}
