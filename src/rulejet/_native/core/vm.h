/* vm.h: the predicate VM that evaluates a compiled rule set per event.
 *
 * A program is flat bytecode for every rule plus a constant pool; rules
 * are evaluated in priority order over the values a PathSet extracted
 * from one event. Values are CEL values: errors flow as values (RJ_C_ERR)
 * and a rule matches only when its result is exactly true. Nothing here
 * allocates per event: computed strings live in a scratch arena rewound
 * per event.
 */
#ifndef RJ_VM_H
#define RJ_VM_H

#include <locale.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "json.h"
#include "../kernels/kernels.h"

enum rj_ctype {
    RJ_C_ERR = 0,
    RJ_C_NULL,
    RJ_C_BOOL,
    RJ_C_INT,
    RJ_C_DOUBLE,
    RJ_C_STR,   /* ptr/len: UTF-8 (already unescaped) */
    RJ_C_LIST,  /* ptr/len: raw JSON array text from the event */
    RJ_C_MAP,   /* ptr/len: raw JSON object text from the event */
    RJ_C_CLIST, /* constant list: items consts[n.i .. n.i + len) */
};

/* Why a value is an error (counted per rule, shown by explain). */
enum rj_cerr {
    RJ_CE_NO_FIELD = 1,
    RJ_CE_OVERLOAD,
    RJ_CE_OVERFLOW,
    RJ_CE_DIV_ZERO,
    RJ_CE_RANGE,
    RJ_CE_UNSUPPORTED,
    RJ_CE_BAD_JSON,
    RJ_CE_NOMEM,
};

/* 16 bytes, so the SysV ABI passes and returns it in two registers. */
typedef struct rj_cel {
    uint8_t type;
    uint8_t reserved[3];
    uint32_t len; /* STR/LIST/MAP: bytes; CLIST: items; ERR: the rj_cerr code */
    union {
        int64_t i;          /* INT, BOOL; CLIST: index of the first item */
        double d;           /* DOUBLE */
        const uint8_t *ptr; /* STR, LIST, MAP */
    } n;
} rj_cel;

enum rj_op {
    RJ_OP_LOAD = 1, /* arg: slot -> push field value (absent: error) */
    RJ_OP_HAS,      /* arg: slot -> push bool */
    RJ_OP_CONST,    /* arg: const index */
    RJ_OP_NOT,
    RJ_OP_NEG,
    RJ_OP_EQ,
    RJ_OP_NE,
    RJ_OP_LT,
    RJ_OP_LE,
    RJ_OP_GT,
    RJ_OP_GE,
    RJ_OP_ADD,
    RJ_OP_SUB,
    RJ_OP_MUL,
    RJ_OP_DIV,
    RJ_OP_MOD,
    RJ_OP_IN,
    RJ_OP_AND_SC, /* arg: pc; top is false -> jump (keeps false) */
    RJ_OP_AND,    /* pop b, a -> a && b with CEL error absorption */
    RJ_OP_OR_SC,  /* arg: pc; top is true -> jump (keeps true) */
    RJ_OP_OR,
    RJ_OP_TEST,   /* arg: pc; pop test: true -> go on; false -> jump;
                   * error or non-bool -> push error and jump to the end
                   * pc stored in the next instruction's arg (RJ_OP_JUMP) */
    RJ_OP_JUMP,   /* arg: pc */
    RJ_OP_STARTS, /* the string functions pop (target, arg) */
    RJ_OP_ENDS,
    RJ_OP_CONTAINS,
    RJ_OP_MATCHES, /* arg: regex index */
    RJ_OP_LOWER,
    RJ_OP_SIZE,
    RJ_OP_TO_INT,
    RJ_OP_TO_DOUBLE,
    RJ_OP_TO_STRING,
    RJ_OP_RET,
    /* Fused "field op constant" forms: a = slot, arg = const index. Each
     * equals LOAD a; CONST arg; <op> (the compiler emits them when it
     * can), minus two pushes and a dispatch. */
    RJ_OP_F_EQ,
    RJ_OP_F_NE,
    RJ_OP_F_LT,
    RJ_OP_F_LE,
    RJ_OP_F_GT,
    RJ_OP_F_GE,
    RJ_OP_F_IN,       /* field in [constants] */
    RJ_OP_F_STARTS,   /* field.startsWith(constant) */
    RJ_OP_F_ENDS,
    RJ_OP_F_CONTAINS,
    RJ_OP_F_CONST_IN, /* constant in field (a list or object) */
    RJ_OP_F_TYPE,     /* the field's value is of a type in the constant, an int
                       * with bit t set for each enum rj_vtype t (RJ_V_MISSING
                       * too); never an error. No surface syntax: JSONLogic
                       * rules test types with it (rulejet/jsonlogic_native.py). */
    RJ_OP_F_MATCHES,  /* field.matches(pattern): arg is the pattern's index in
                       * regex[], not a constant */
    RJ_OP_MAX_,
};

typedef struct rj_insn {
    uint16_t op;
    uint16_t a;  /* slot, for the fused forms */
    int32_t arg;
} rj_insn;

/* Atoms checked (memoized) before a rule runs. */
#define RJ_MAX_ATOMS 4

enum {
    RJ_SHAPE_GENERAL = 0, /* atoms are necessary conjuncts: one false -> false */
    RJ_SHAPE_AND = 1,     /* the rule IS the conjunction of its atoms */
    RJ_SHAPE_OR = 2,      /* the rule IS the disjunction of its atoms */
    RJ_SHAPE_TREE = 3,    /* the rule IS its tree of atoms: never runs code */
};

/* A rule's tree: postfix tokens, an atom index (>= 0) or one of these.
 * Values are three-valued (true, false, neither); an exit ends the rule
 * when the value so far (the only one on the stack) already decides it. */
enum {
    RJ_TREE_AND = -1,
    RJ_TREE_OR = -2,
    RJ_TREE_NOT = -3,
    RJ_TREE_EXIT_FALSE = -4,
    RJ_TREE_EXIT_TRUE = -5,
};
#define RJ_TREE_MAX_ATOMS 32
#define RJ_TREE_MAX_TOKENS (4 * RJ_TREE_MAX_ATOMS)

/* A rule's guards: it can match (or give an error) only when one of them
 * holds, so an event where none does skips it. One guard is a conjunct of
 * the rule (a field pinned to constants, or one that must end with a
 * constant); several are one per disjunct of an || (each pinned, ending
 * with a constant, or a bare bool field). A field that is absent or
 * unreadable holds every guard on it (the rule runs, its error counts). */
#define RJ_MAX_GUARDS 4
enum {
    RJ_GUARD_IN = 0,        /* the slot's value is one of consts[off .. + len) */
    RJ_GUARD_NOT_FALSE = 1, /* the slot's value is anything but false (a bare field) */
    RJ_GUARD_SUFFIX = 2,    /* the slot's value is not a string ending otherwise than
                               consts[off] (a string constant) */
};
typedef struct rj_rule_guard {
    uint32_t slot, off, len, kind;
} rj_rule_guard;

typedef struct rj_rule_code {
    uint32_t entry;       /* pc of the rule's first instruction */
    uint32_t stop;        /* 1: a match skips lower-priority rules */
    int32_t pre[RJ_MAX_ATOMS]; /* atoms (-1: none), read as `shape` says */
    int32_t pre_computed[RJ_MAX_ATOMS]; /* those of pre outside the cells (AND, GENERAL) */
    uint32_t shape;       /* RJ_SHAPE_*: what the atoms decide */
    uint32_t n_guards;    /* 0: unguarded */
    rj_rule_guard guards[RJ_MAX_GUARDS];
    uint32_t tree_off;    /* RJ_SHAPE_TREE: tokens tree[tree_off .. + tree_len) */
    uint32_t tree_len;
} rj_rule_code;

/* Guards grouped by field: one hash lookup per event and field finds the
 * rules whose guard constants include the field's value. */
typedef struct rj_guard_group {
    uint32_t slot;
    uint32_t kind;        /* RJ_GUARD_*: NOT_FALSE groups have no table */
    uint32_t disjunct;    /* 1: guards of || rules (never covered by the cells) */
    uint32_t *rules;      /* every rule guarded on this field */
    uint32_t n_rules;
    uint32_t table_bits;  /* open addressing: 2^bits entries */
    uint32_t *table_const; /* const index, or UINT32_MAX for empty */
    uint32_t *table_rule;  /* the rule that constant belongs to */
    uint32_t in_cells;     /* 1: the cells' rule bits do this guard's job; skip it */
    uint32_t n_pairs;      /* (constant, rule) pairs, also listed side by side: */
    uint32_t *pair_const, *pair_rule; /* a few are compared in turn, not hashed */
} rj_guard_group;

/* An atom: one fused instruction (op, a, arg), possibly negated, or a
 * bare field (op LOAD: true or false if it holds a bool), that is a
 * conjunct of some rules or a leaf of their trees. Atoms are evaluated at most once per
 * event; a rule whose atom is false is false without running. */
typedef struct rj_atom {
    uint16_t op, a;
    int32_t arg;
    uint32_t negate;
    int32_t cells; /* its field's rj_slot_cells, or -1 (set by rj_program_index) */
    uint16_t shared; /* used by more than one rule (or twice in one): memoized per event */
    uint16_t fast;   /* an RJ_FAST_ kind: the usual case has a direct path (rj_program_index) */
} rj_atom;

/* Atoms whose usual operands need none of the general machinery: an
 * unescaped string field against a string constant (==, !=, startsWith,
 * endsWith, contains), a number field against a number constant of the
 * same type (ordering), a bool field against a bool (==, !=), or a string
 * constant in an array of plain strings. Any other value takes the
 * general path. */
enum { RJ_FAST_NONE = 0, RJ_FAST_STR, RJ_FAST_INT, RJ_FAST_DOUBLE, RJ_FAST_IN_STRINGS, RJ_FAST_BOOL,
       RJ_FAST_STR_ESCAPED }; /* RJ_FAST_STR whose constant holds a byte JSON must escape
                               * ('"', '\\', < 0x20): an unescaped value never holds it */

/* The atoms on one field whose results depend only on where the field's
 * value falls among their constants (comparisons, equality, `in` a list
 * of scalars, startsWith, has, a bare bool field, a string constant `in`
 * the field). Their constants, split into numbers and strings, are sorted
 * into thresholds t[0] < ... < t[n-1], which cut the domain into 2n+1
 * cells (cell 2j: between t[j-1] and t[j]; cell 2j+1: equal to t[j]);
 * more cells are "missing", false, true, null, and containers: with no
 * `"s" in field` atom one cell for every list and object, else one per
 * subset of their strings found in an array of plain strings (bit j:
 * member[j] is an element; other containers have no cell). One search per event
 * finds the value's cell, whose row holds every one of these atoms'
 * results (0, 1, or 2: neither) and four rule bitsets: for conjunctions,
 * the rules none of whose atoms on this field is false ("possible") and
 * those all of whose are true ("satisfied"); for disjunctions, the rules
 * with an atom here true ("any true") and those with all false ("all
 * false"). A rule without atoms here is in each set but "any true". */
#define RJ_CELL_SETS 4

/* A row's RJ_CELL_SETS bitsets (W words each) before any atom: every rule
 * possible and satisfied, none with an atom true, all with all false. */
static inline void rj_row_bits_start(uint64_t *b, size_t W)
{
    memset(b, 0xff, 2 * W * sizeof(uint64_t));     /* possible, satisfied */
    memset(b + 2 * W, 0, W * sizeof(uint64_t));    /* any_true */
    memset(b + 3 * W, 0xff, W * sizeof(uint64_t)); /* all_false */
}

/* Rule r's atom has result v (0, 1, 2: neither) in the row: a conjunct of
 * an AND or GENERAL rule (one false: not possible; not true: not
 * satisfied), or a disjunct of an OR rule (true: any true; not false: not
 * all false). */
static inline void rj_row_bits_narrow(uint64_t *b, size_t W, uint32_t r, uint8_t v, int is_or)
{
    uint64_t bit = 1ULL << (r % 64);
    if (is_or) {
        if (v == 1)
            b[2 * W + r / 64] |= bit;
        if (v != 0)
            b[3 * W + r / 64] &= ~bit;
    } else {
        if (v == 0)
            b[r / 64] &= ~bit;
        if (v != 1)
            b[W + r / 64] &= ~bit;
    }
}
typedef struct rj_slot_cells {
    uint32_t slot;
    uint32_t first_atom, n_atoms; /* atoms[first_atom .. + n_atoms) */
    uint32_t n_num, n_str;
    rj_cel *num, *str;     /* thresholds (strings point into consts or succ_bytes) */
    double *num_d;         /* num as doubles, if every one is exactly a double */
    /* The row of each integer in [int_lo, int_lo + int_span), as the search
     * finds it (NULL: none): an integer field's values (ages, statuses)
     * mostly fall between its thresholds, and one load beats a search. */
    uint32_t *int_rows;
    int64_t int_lo;
    uint64_t int_span;
    /* The same for doubles, a row per unit interval [k, k + 1) holding no
     * threshold (UINT32_MAX where one lies: those search), from floor of
     * the lowest threshold to floor of the highest; values outside search. */
    uint32_t *unit_rows;
    double unit_lo, unit_hi; /* unit_rows[k - unit_lo] for unit_lo <= x < unit_hi */
    uint32_t str_skip;     /* the bytes every string threshold begins with ... */
    uint64_t *str_key;     /* ... and the 8 after them, big-endian, zero-padded */
    /* When no atom orders strings (only ==, !=, in, has), a string's row
     * depends only on which threshold it equals, if any: an open-addressing
     * table of threshold indexes (UINT32_MAX: empty) finds it by hash. */
    uint32_t *str_hash;
    uint32_t str_hash_shift; /* 64 - the table's bits */
    rj_cel *member;        /* the strings `in` atoms look for (n_member <= RJ_CELLS_MAX_MEMBERS) */
    uint32_t n_member;
    uint8_t *rows;         /* atom results: rj_cells_n_rows(g) x n_atoms */
    uint64_t *bits;        /* per row: RJ_CELL_SETS bitsets of n_words */
    uint64_t *involved;    /* rules with a conjunct atom here */
    uint8_t *succ_bytes;   /* storage for the startsWith upper bounds */
} rj_slot_cells;

/* A field's atoms remembered per value (see vmemo.h): atoms[] are atom
 * indexes; each (rule, atom) pair where the atom is a conjunct (or, for
 * OR rules, a disjunct) narrows the rule bitsets as a cells row does. */
typedef struct rj_memo_group {
    uint32_t slot;
    uint32_t *atoms;
    uint32_t n_atoms;
    uint32_t n_pairs;
    uint32_t *pair_rule;
    uint8_t *pair_atom; /* index into atoms[] */
    uint8_t *pair_or;   /* 1: the rule is an OR of its atoms */
    uint64_t *involved; /* rules with a pair here */
    uint32_t *note;     /* indexes into atoms[] of those some rule may read alone */
    uint32_t n_note;    /* (a tree, or a rule the bits do not decide) */
} rj_memo_group;

typedef struct rj_program {
    const rj_pathset *ps;
    rj_insn *code;
    uint32_t n_code;
    rj_cel *consts;
    uint32_t n_consts;
    uint8_t *bytes; /* storage the string constants point into */
    rj_rule_code *rules;
    uint32_t n_rules;
    regex_t *regex;
    uint32_t n_regex;
    uint32_t *regex_standin; /* per regex: the code point a lone surrogate is matched as */
    uint32_t max_stack;
    rj_guard_group *groups;
    uint32_t n_groups;
    uint32_t *live_groups; /* the groups events must search (not left to the cells) */
    uint32_t n_live_groups;
    rj_atom *atoms;
    uint32_t n_atoms;
    int32_t *tree;       /* every rule's tree tokens */
    uint32_t n_tree;
    rj_slot_cells *cells;
    uint32_t n_cells;
    uint32_t n_live_cells; /* cells with tables (rows): none, and events skip them */
    rj_memo_group *memos;
    uint32_t n_memos;
    uint64_t *table_and; /* AND rules whose atoms are all in cells (or memos): the bits decide them */
    uint64_t *table_or;  /* the same for OR rules */
    uint64_t *unguarded; /* bitset of rules without a guard */
    uint32_t n_words;    /* 64-bit words per rule bitset */
    uint32_t any_stop;   /* 1: some rule has stop (matches must be met in order) */
} rj_program;

/* Build the guard groups from rules[].guard_* and the atoms' cells (after
 * consts are set; renumbers atoms, rewriting rules[].pre and trees). */
int rj_program_index(rj_program *p);
void rj_program_free_index(rj_program *p);

/* matches() results, remembered per (pattern, string) across events: a
 * field such as a user agent repeats a few values, and regexec costs far
 * more than a hash and a compare. 2^RJ_RE_MEMO_BITS sets of
 * RJ_RE_MEMO_WAYS entries (a few hot strings that hash alike do not
 * evict each other), per VM (per thread); longer strings are matched
 * every time. RULEJET_REGEX_MEMO=0 turns it off (for measuring it).
 * Results never depend on it. */
#define RJ_RE_MEMO_BITS 8
#define RJ_RE_MEMO_WAYS 2
#define RJ_RE_MEMO_ENTRIES ((1u << RJ_RE_MEMO_BITS) * RJ_RE_MEMO_WAYS)
#define RJ_RE_MEMO_MAX 256 /* bytes: a browser's user agent is 100-200 */
/* Each pattern's memo use: after RJ_RE_MEMO_TRIAL lookups with fewer
 * than one hit in RJ_RE_MEMO_MIN_HITS, the pattern skips the memo for
 * RJ_RE_MEMO_REST calls (values that never repeat, such as timestamps,
 * would only pay for the hash, the compare and the store), then tries
 * again. */
#define RJ_RE_MEMO_TRIAL 1024
#define RJ_RE_MEMO_MIN_HITS 8
#define RJ_RE_MEMO_REST 65536
/* A memo's trial (the regex memo's per pattern, a value memo's): whether
 * it is consulted this call. After `trial` lookups with fewer than
 * `min_hits` hits, it rests for `rest` calls, then tries again. */
typedef struct rj_memo_trial {
    uint32_t lookups, hits, rest;
} rj_memo_trial;

static inline int rj_memo_trial_use(rj_memo_trial *t, uint32_t trial, uint32_t min_hits,
                                    uint32_t rest)
{
    if (t->rest) {
        t->rest--;
        return 0;
    }
    if (++t->lookups == trial) {
        if (t->hits < min_hits)
            t->rest = rest;
        t->lookups = t->hits = 0;
    }
    return 1;
}
typedef struct rj_re_memo {
    uint32_t re; /* the pattern's index; UINT32_MAX: empty */
    uint32_t len;
    uint32_t result; /* 1: the pattern matches */
    uint8_t text[RJ_RE_MEMO_MAX];
} rj_re_memo;

typedef struct rj_vm {
    const rj_program *prog;
    const rj_kernel *kernel; /* for substring search: the active one, unless the run sets it */
    uint64_t *active; /* rules to evaluate for the current event */
    uint8_t *atom_val; /* per atom: 0 false, 1 true, 2 neither */
    int32_t *cell_row; /* per cell group: this event's row, or -1 (a type it does not cover) */
    uint32_t *atom_gen;
    /* This event's rule bitsets from the cells (as in rj_slot_cells). */
    uint64_t *possible, *satisfied, *any_true, *all_false, *undecided;
    rj_cel *stack;
    rj_cel *slot_cache;   /* loaded slot values for the current event */
    uint32_t *slot_gen;   /* slot_cache[i] is valid when == gen */
    uint32_t gen;
    rj_arena scratch;     /* computed strings; reset per event */
    int scratch_ready;
    const rj_value *row;  /* the event's extracted values */
    const uint8_t *base;  /* the buffer the values point into */
    /* Arrays of plain strings, split once per event for the `"s" in field`
     * atoms that read them: per slot, its elements arr_el[first ..
     * first + count) while gen is the event's; first is RJ_ARR_OTHER for
     * an array of anything else and RJ_ARR_FULL when arr_el had no room. */
    struct rj_arr_split {
        uint32_t gen, first, count;
    } *arr;
    struct rj_arr_el {
        const uint8_t *s;
        size_t len;
    } *arr_el;
    uint32_t arr_used;
    rj_re_memo *re_memo; /* RJ_RE_MEMO_ENTRIES entries, made when first used */
    rj_memo_trial *re_use; /* per pattern, made with re_memo */
    int re_memo_wanted;  /* set by rj_vm_init; a VM for one event clears it */
    struct rj_vmemo *vmemo; /* per memo group (vmemo.h), made on first use */
    int vmemo_wanted;       /* as re_memo_wanted */
} rj_vm;

#define RJ_ARR_CAP 256 /* elements split per event, over all slots */

enum { RJ_ARR_OTHER = UINT32_MAX, RJ_ARR_FULL = UINT32_MAX - 1 };

int rj_vm_init(rj_vm *vm, const rj_program *prog);
void rj_vm_free(rj_vm *vm);

/* Evaluate every rule for one event (row of extracted values over base).
 * The indexes of matched rules go to matched[] in priority order (a stop
 * ends the list), their count is returned; err_counts[r] is bumped for
 * each rule whose result was an error. */
uint32_t rj_vm_eval_event(rj_vm *vm, const rj_value *row, const uint8_t *base,
                          uint32_t *matched, uint64_t *err_counts);

/* Evaluate one rule and return its result value (for explain). */
rj_cel rj_vm_eval_rule(rj_vm *vm, uint32_t rule, const rj_value *row, const uint8_t *base);

/* Fixed locales (NULL if the system lacks them): "C" for number parsing,
 * a UTF-8 one for regular expressions (compile and match in it). */
locale_t rj_c_locale(void);
locale_t rj_utf8_locale(void);

/* Format a double as Python's repr() does (shortest round trip). Writes at
 * most 32 bytes; returns the length. */
size_t rj_format_double(double d, char *out);

#endif
