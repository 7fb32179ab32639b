/* json.h: the JSON path engine's shared types (values, errors, path tries).
 *
 * A value is a tagged 24-byte record pointing into the caller's buffer:
 * nothing is copied or decoded until a consumer asks. Offsets are from the
 * start of the buffer given to the scan, so a value stays meaningful while
 * that buffer lives; a document longer than 4 GiB - 1 is refused.
 */
#ifndef RJ_JSON_H
#define RJ_JSON_H

#include <stddef.h>
#include <stdint.h>

enum rj_vtype {
    RJ_V_MISSING = 0, /* absent path (zeroed memory means missing) */
    RJ_V_NULL,
    RJ_V_FALSE,
    RJ_V_TRUE,
    RJ_V_INT,    /* fits int64: num.i */
    RJ_V_BIGINT, /* integer text too large for int64; num.d approximates */
    RJ_V_DOUBLE, /* num.d, correctly rounded */
    RJ_V_STRING, /* span is the content between the quotes */
    RJ_V_OBJECT, /* span is the exact text, braces included */
    RJ_V_ARRAY,
};

enum { RJ_VF_ESCAPED = 1 }; /* string span contains backslash escapes */

typedef struct rj_value {
    union {
        struct {
            uint8_t type;
            uint8_t flags;
            uint16_t reserved;
        };
        /* The three at once (rj_value_set_tag): a store through a char
         * type may alias anything, so the scanner's stores of type and
         * flags would make the compiler reload every pointer it holds. */
        uint32_t tag;
    };
    uint32_t len;
    uint64_t off;
    union {
        int64_t i;
        double d;
    } num;
} rj_value;

static inline void rj_value_set_tag(rj_value *v, uint8_t type, uint8_t flags)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v->tag = (uint32_t)type | (uint32_t)flags << 8;
#else
    v->tag = (uint32_t)type << 24 | (uint32_t)flags << 16;
#endif
}

/* Error codes (negative, like -errno, but in their own range). */
enum {
    RJ_EJSON = -1000,   /* malformed JSON; offset and message say where/why */
    RJ_EDEPTH = -1001,  /* nesting deeper than RJ_JSON_MAX_DEPTH */
    RJ_ETOOBIG = -1002, /* document larger than 4 GiB - 1 */
};

#define RJ_JSON_MAX_DEPTH 1024

typedef struct rj_json_err {
    uint64_t offset;  /* from the start of the buffer */
    const char *msg;  /* static string */
} rj_json_err;

/* ---- Path tries ---- */

enum rj_step_kind {
    RJ_STEP_KEY = 1,          /* object member */
    RJ_STEP_INDEX = 2,        /* array element */
    RJ_STEP_KEY_OR_INDEX = 3, /* JSON Pointer token of digits: either */
};

typedef struct rj_step {
    int kind;
    const char *key; /* UTF-8, unescaped; for KEY and KEY_OR_INDEX */
    size_t key_len;
    uint64_t index;  /* for INDEX and KEY_OR_INDEX */
} rj_step;

/* Paths are first built as a trie whose edges may be ambiguous (a JSON
 * Pointer digit token is a key or an index, and "/x/0" and "$.x.0" may
 * share a parent), then determinized: the scanner walks a graph in which
 * any key or index matches at most one edge, and a node lists every path
 * slot its value fills. */
typedef struct rj_edge {
    uint8_t kind;              /* RJ_STEP_KEY or RJ_STEP_INDEX after finish */
    uint32_t key_off, key_len; /* into rj_pathset.keys */
    uint64_t index;
    uint32_t child;            /* node index */
    uint32_t next;             /* next sibling edge, or UINT32_MAX */
} rj_edge;

/* Key edges of a node are also in an open-addressing table hashed on an
 * unescaped key's first 8 bytes (one load from the document): an object
 * member's key usually costs one multiply, one probe and one 8-byte
 * compare, wanted or not. 16 bytes an entry (an index is one shift); a
 * longer key's whole text is found through ps->key_tab_text. */
typedef struct rj_key_entry {
    uint64_t head;  /* the key's first 8 bytes, zero-padded */
    uint32_t len;   /* UINT32_MAX: an empty entry */
    uint32_t child; /* the node the key leads to */
} rj_key_entry;

/* The head alone: a short key's zero padding already tells its length
 * (keys hold no NUL byte: a control character), and long keys that share
 * their first 8 bytes just probe on. shift is 64 - the table's bits. */
static inline uint32_t rj_key_hash(uint64_t head, uint32_t shift)
{
    return (uint32_t)((head * 0x9E3779B97F4A7C15ULL) >> shift);
}

typedef struct rj_node {
    uint32_t first_edge;       /* UINT32_MAX if none */
    uint32_t term_off, n_term; /* slots this node's value fills: ps->slot_lists */
    int32_t first_slot;        /* slot_lists[term_off], or -1 when n_term is 0 */
    uint32_t reset_off, n_reset; /* slots at or under this node (duplicate keys) */
    uint8_t has_key_edges, has_index_edges;
    uint32_t n_key_edges;      /* distinct keys this node's objects are searched for */
    uint64_t max_index;        /* largest index edge (arrays skip past it) */
    uint32_t key_tab_off;      /* key edges: ps->key_tab[off .. off + 2^bits) */
    uint32_t key_tab_bits;     /* 0 when the node has no key edges */
    uint32_t key_tab_shift;    /* 64 - key_tab_bits, for rj_key_hash */
    uint32_t key_tab_mask;     /* 2^bits - 1 */
    /* ps->key_tab + key_tab_off, and beside each entry its key's whole
     * text (for keys over 8 bytes): the member loop's probe then needs no
     * field of the path set. */
    const struct rj_key_entry *key_tab;
    const char *const *key_tab_text;
} rj_node;

typedef struct rj_pathset {
    /* The determinized graph the scanner walks (valid after finish). */
    rj_node *nodes;
    uint32_t n_nodes, cap_nodes;
    rj_edge *edges;
    uint32_t n_edges, cap_edges;
    uint32_t *slot_lists;
    uint32_t n_slot_lists;
    struct rj_key_entry *key_tab;
    const char **key_tab_text; /* beside each key_tab entry: its key, in keys */
    /* The trie as built by rj_pathset_add. */
    rj_node *tnodes;
    uint32_t n_tnodes, cap_tnodes;
    rj_edge *tedges;
    uint32_t n_tedges, cap_tedges;
    int32_t *tslot;      /* trie node -> slot, or -1 */
    char *keys;
    size_t keys_len, keys_cap;
    uint32_t n_slots;    /* distinct path ends */
    uint32_t n_paths;
    uint32_t *path_slot; /* path index -> slot */
    uint32_t max_depth;  /* longest path */
    int finished;
} rj_pathset;

int rj_pathset_init(rj_pathset *ps);
/* Add one path; 0 or -ENOMEM / -EINVAL. Paths may share prefixes. */
int rj_pathset_add(rj_pathset *ps, const rj_step *steps, size_t n);
/* Determinize the trie into the graph the scanner walks. 0 or -ENOMEM. */
int rj_pathset_finish(rj_pathset *ps);
void rj_pathset_free(rj_pathset *ps);

/* The key an object's member at one position had in recent documents
 * (NDJSON events mostly repeat their producer's key order): its text as
 * it appears, '"' key '"' ':', up to 16 bytes, masked, and the node it
 * leads to. A member whose bytes equal it needs neither the key's string
 * scan nor the table probe, and the next position is known at once. The
 * masks are stored inverted (skip_lo: the bytes not compared), so an
 * entry of zeros, as calloc leaves it, asks for 16 NULs where a member's
 * opening quote is: never equal, and untouched pages stay untouched. */
#define RJ_MEMO_WAYS 16 /* member positions remembered per object node */
typedef struct rj_key_memo {
    uint64_t lo, hi, skip_lo, skip_hi;
    uint32_t len;    /* bytes the pattern covers */
    uint32_t child;  /* what the key's lookup gives */
    uint32_t misses; /* in a row: a second replaces the entry */
} rj_key_memo;

/* Scratch for one scan: per-node "seen in this document" marks used to
 * make the last of duplicate keys win, and the key-order memo (read and
 * written by every scan: one scratch per thread). */
typedef struct rj_scan_scratch {
    uint32_t *seen;
    uint32_t gen;
    rj_key_memo *memo; /* RJ_MEMO_WAYS per node */
} rj_scan_scratch;

int rj_scratch_init(rj_scan_scratch *s, const rj_pathset *ps);
void rj_scratch_free(rj_scan_scratch *s);

/* ---- Values (json_values.c) ---- */

/* 1e0 .. 1e22: the powers of ten that are exact doubles. */
extern const double rj_pow10_exact[23];

/* Parse validated JSON number text as a correctly rounded double (the same
 * result as Python's float(text)). */
double rj_number_to_double(const uint8_t *p, size_t n);

/* Decode the content of a string span (validated escapes) into UTF-8 at
 * out (needs n bytes: decoding never grows). Lone surrogates from \u
 * escapes become their 3-byte (WTF-8) form, as Python's "surrogatepass"
 * expects. Returns the decoded length. */
size_t rj_unescape(const uint8_t *p, size_t n, uint8_t *out);

/* Compare an escaped string span with unescaped UTF-8 without a buffer. */
int rj_escaped_equals(const uint8_t *p, size_t n, const char *want, size_t want_len);

/* Offset of the first invalid UTF-8 byte in [p, p + n), or n if valid
 * (strict: no overlongs, no surrogates, nothing above U+10FFFF). */
size_t rj_utf8_check(const uint8_t *p, size_t n);

/* ---- Batches over NDJSON (json_batch.c) ---- */

typedef struct rj_line_error {
    uint64_t line;   /* 1-based */
    uint64_t offset; /* byte offset in the buffer */
    uint64_t column; /* 1-based byte column in the line */
    const char *msg;
} rj_line_error;

/* One batch of rows: a row per line (absent values, blank and malformed
 * lines are all-MISSING rows), plus the malformed lines' errors. */
typedef struct rj_batch {
    rj_value *values; /* rows x n_slots */
    size_t rows, cap_rows;
    rj_line_error *errors;
    size_t n_errors, cap_errors;
    uint64_t blank; /* lines holding only whitespace */
} rj_batch;

struct rj_kernel;

/* What rj_ndjson_line found at a line. */
enum { RJ_LINE_VALUES, RJ_LINE_BLANK, RJ_LINE_MALFORMED };

/* The NDJSON line starting at buf + p (p < len): RJ_LINE_VALUES with row
 * filled, RJ_LINE_BLANK (only ' ', '\t', '\r'; row untouched) or
 * RJ_LINE_MALFORMED with *err set (a document over 4 GiB included).
 * *end gets the line's '\n', or len for a last line without one. */
int rj_ndjson_line(const struct rj_kernel *k, const rj_pathset *ps, rj_scan_scratch *scratch,
                   const uint8_t *buf, size_t p, size_t len, rj_value *row, size_t *end,
                   rj_json_err *err);

/* Scan lines of buf from *pos until max_rows rows were added or the buffer
 * ends; *pos and *line_no (1-based number of the line at *pos) advance.
 * Lines follow rj_line_starts' rules. 0, or -ENOMEM (rows added so far
 * stay valid; *pos is at the first line not scanned). */
int rj_json_extract_lines(const struct rj_kernel *k, const rj_pathset *ps,
                          rj_scan_scratch *scratch, const uint8_t *buf, size_t len,
                          size_t *pos, uint64_t *line_no, size_t max_rows, rj_batch *b);

/* Turn a scanned row into a malformed line's (all MISSING) and record its
 * error, in line order with the batch's others: for a value the caller
 * cannot convert. 0 or -ENOMEM. */
int rj_batch_reject_row(rj_batch *b, size_t slots, size_t row, uint64_t line, uint64_t offset,
                        uint64_t column, const char *msg);

/* Empty the batch for reuse, keeping its memory. */
void rj_batch_clear(rj_batch *b);
void rj_batch_free(rj_batch *b);

#endif
