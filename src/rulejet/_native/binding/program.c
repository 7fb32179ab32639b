/* program.c (binding): Program, a compiled rule set. The compiler
 * (rulejet/compiler.py) hands over bytecode, constants, rule entries and
 * regular expressions; this file checks them (a bad program must not be
 * able to make the VM read out of bounds), builds the native program, and
 * runs it over buffers with the GIL released.
 */
#include "module.h"
#include "../core/dispatch.h"
#include "../core/run.h"
#include "../core/sink.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    rj_program prog;
    PyObject *pathset; /* keeps prog.ps alive */
    int ready;
} Program;

/* Defined in pathset.c. */
const rj_pathset *rj_pathset_of(PyObject *obj, rj_state *st);

static int bad(const char *msg)
{
    PyErr_SetString(PyExc_ValueError, msg);
    return -1;
}

/* Upper bound of the UTF-8 bytes of all string constants (4 per code
 * point covers surrogatepass's 3-byte lone surrogates too). */
static size_t bytes_needed(PyObject *consts)
{
    size_t total = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(consts); i++) {
        PyObject *c = PyList_GET_ITEM(consts, i);
        if (PyUnicode_Check(c))
            total += 4 * (size_t)PyUnicode_GET_LENGTH(c) + 1;
    }
    return total;
}

static int build_consts(Program *self, PyObject *consts)
{
    rj_program *p = &self->prog;
    Py_ssize_t n = PyList_GET_SIZE(consts);
    size_t cap = bytes_needed(consts) + 1;
    p->consts = calloc(n ? (size_t)n : 1, sizeof(rj_cel));
    p->bytes = malloc(cap);
    if (!p->consts || !p->bytes) {
        PyErr_NoMemory();
        return -1;
    }
    p->n_consts = (uint32_t)n;
    size_t used = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = PyList_GET_ITEM(consts, i);
        rj_cel *v = &p->consts[i];
        if (c == Py_None) {
            v->type = RJ_C_NULL;
        } else if (PyBool_Check(c)) {
            v->type = RJ_C_BOOL;
            v->n.i = c == Py_True;
        } else if (PyLong_Check(c)) {
            v->type = RJ_C_INT;
            v->n.i = PyLong_AsLongLong(c);
            if (PyErr_Occurred())
                return -1;
        } else if (PyFloat_Check(c)) {
            v->type = RJ_C_DOUBLE;
            v->n.d = PyFloat_AS_DOUBLE(c);
        } else if (PyUnicode_Check(c)) {
            /* surrogatepass: a lone surrogate becomes the same WTF-8 bytes
             * the JSON decoder makes of "\ud800". */
            PyObject *b = PyUnicode_AsEncodedString(c, "utf-8", "surrogatepass");
            if (!b)
                return -1;
            size_t len = (size_t)PyBytes_GET_SIZE(b);
            if (used + len + 1 > cap) {
                Py_DECREF(b);
                return bad("constant pool overflow");
            }
            memcpy(p->bytes + used, PyBytes_AS_STRING(b), len);
            Py_DECREF(b);
            v->type = RJ_C_STR;
            v->n.ptr = p->bytes + used;
            v->len = (uint32_t)len;
            used += len + 1;
        } else if (PyTuple_Check(c) && PyTuple_GET_SIZE(c) == 2) {
            /* (first item index, item count): a constant list */
            long long first = PyLong_AsLongLong(PyTuple_GET_ITEM(c, 0));
            long long count = PyLong_AsLongLong(PyTuple_GET_ITEM(c, 1));
            if (PyErr_Occurred())
                return -1;
            if (first < 0 || count < 0 || first + count > n)
                return bad("constant list out of range");
            v->type = RJ_C_CLIST;
            v->n.i = first;
            v->len = (uint32_t)count;
        } else {
            PyErr_Format(PyExc_TypeError, "unsupported constant %R", c);
            return -1;
        }
    }
    return 0;
}

/* Every jump, slot, constant and regex index in range; every rule entry
 * inside the code; the code ends with RET. */
/* A tree must be well formed postfix over existing atoms: the VM trusts it. */
static int check_tree(const rj_program *p, const rj_rule_code *rc)
{
    uint32_t depth = 0;
    if (!rc->tree_len || rc->tree_len > RJ_TREE_MAX_TOKENS)
        return bad("bad rule tree size");
    for (uint32_t i = 0; i < rc->tree_len; i++) {
        int32_t t = p->tree[rc->tree_off + i];
        if (t >= 0) {
            if ((uint32_t)t >= p->n_atoms)
                return bad("tree atom out of range");
            if (++depth > RJ_TREE_MAX_ATOMS)
                return bad("rule tree too deep");
        } else if (t == RJ_TREE_AND || t == RJ_TREE_OR) {
            if (depth < 2)
                return bad("bad rule tree");
            depth--;
        } else if (t == RJ_TREE_NOT) {
            if (depth < 1)
                return bad("bad rule tree");
        } else if (t == RJ_TREE_EXIT_FALSE || t == RJ_TREE_EXIT_TRUE) {
            if (depth != 1)
                return bad("bad rule tree exit");
        } else {
            return bad("unknown rule tree token");
        }
    }
    return depth == 1 ? 0 : bad("bad rule tree");
}

static int check_code(const rj_program *p)
{
    if (!p->n_code || p->code[p->n_code - 1].op != RJ_OP_RET)
        return bad("program must end with RET");
    for (uint32_t pc = 0; pc < p->n_code; pc++) {
        const rj_insn *in_ = &p->code[pc];
        int32_t a = in_->arg;
        switch (in_->op) {
        case RJ_OP_LOAD: case RJ_OP_HAS:
            if (a < 0 || (uint32_t)a >= p->ps->n_slots)
                return bad("slot out of range");
            break;
        case RJ_OP_CONST:
            if (a < 0 || (uint32_t)a >= p->n_consts)
                return bad("constant out of range");
            break;
        case RJ_OP_AND_SC: case RJ_OP_OR_SC: case RJ_OP_JUMP:
            if (a <= (int32_t)pc || (uint32_t)a >= p->n_code)
                return bad("jump out of range");
            break;
        case RJ_OP_TEST:
            if (a <= (int32_t)pc + 1 || (uint32_t)a >= p->n_code || p->code[a - 1].op != RJ_OP_JUMP)
                return bad("conditional without its jump");
            break;
        case RJ_OP_MATCHES:
            if (a < 0 || (uint32_t)a >= p->n_regex)
                return bad("regex out of range");
            break;
        case RJ_OP_F_MATCHES:
            if (in_->a >= p->ps->n_slots || a < 0 || (uint32_t)a >= p->n_regex)
                return bad("fused operand out of range");
            break;
        case RJ_OP_F_EQ: case RJ_OP_F_NE: case RJ_OP_F_LT: case RJ_OP_F_LE: case RJ_OP_F_GT:
        case RJ_OP_F_GE: case RJ_OP_F_IN: case RJ_OP_F_STARTS: case RJ_OP_F_ENDS:
        case RJ_OP_F_CONTAINS: case RJ_OP_F_CONST_IN: case RJ_OP_F_TYPE:
            if (in_->a >= p->ps->n_slots || a < 0 || (uint32_t)a >= p->n_consts)
                return bad("fused operand out of range");
            if (in_->op == RJ_OP_F_TYPE && p->consts[a].type != RJ_C_INT)
                return bad("type test without its mask");
            break;
        default:
            if (in_->op == 0 || in_->op >= RJ_OP_MAX_)
                return bad("unknown opcode");
        }
    }
    for (uint32_t i = 0; i < p->n_atoms; i++) {
        const rj_atom *a = &p->atoms[i];
        int fused = a->op >= RJ_OP_F_EQ && a->op < RJ_OP_MAX_;
        uint32_t n_args = a->op == RJ_OP_F_MATCHES ? p->n_regex : p->n_consts;
        if ((!fused && a->op != RJ_OP_HAS && a->op != RJ_OP_LOAD) || a->a >= p->ps->n_slots ||
            (fused && (a->arg < 0 || (uint32_t)a->arg >= n_args)) ||
            (a->op == RJ_OP_F_TYPE && p->consts[a->arg].type != RJ_C_INT))
            return bad("atom out of range");
    }
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const rj_rule_code *rc = &p->rules[r];
        if (rc->entry >= p->n_code)
            return bad("rule entry out of range");
        for (int a = 0; a < RJ_MAX_ATOMS; a++)
            if (rc->pre[a] >= 0 && (uint32_t)rc->pre[a] >= p->n_atoms)
                return bad("rule atom out of range");
        if (rc->shape == RJ_SHAPE_TREE && check_tree(p, rc) < 0)
            return -1;
        for (uint32_t j = 0; j < rc->n_guards; j++) {
            const rj_rule_guard *gd = &rc->guards[j];
            if (gd->slot >= p->ps->n_slots || gd->off + (uint64_t)gd->len > p->n_consts ||
                (gd->kind != RJ_GUARD_IN && gd->kind != RJ_GUARD_NOT_FALSE &&
                 gd->kind != RJ_GUARD_SUFFIX) ||
                (gd->kind == RJ_GUARD_SUFFIX &&
                 (gd->len != 1 || p->consts[gd->off].type != RJ_C_STR)))
                return bad("rule guard out of range");
        }
    }
    return 0;
}

static int program_init(Program *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"pathset", "code", "consts", "rules", "regexes", "max_stack",
                            "atoms", NULL};
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    PyObject *pathset, *consts, *rules, *regexes, *atoms = NULL;
    Py_buffer code;
    unsigned int max_stack;
    if (self->ready)
        return bad("Program already initialized");
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oy*O!O!O!I|O!:Program", names, &pathset, &code,
                                     &PyList_Type, &consts, &PyList_Type, &rules, &PyList_Type,
                                     &regexes, &max_stack, &PyList_Type, &atoms))
        return -1;
    rj_program *p = &self->prog;
    int rc = -1;
    p->ps = rj_pathset_of(pathset, st);
    if (!p->ps)
        goto out;
    self->pathset = Py_NewRef(pathset);
    if (code.len % (Py_ssize_t)sizeof(rj_insn) || max_stack > (1u << 20)) {
        bad("bad code size or stack depth");
        goto out;
    }
    p->n_code = (uint32_t)(code.len / (Py_ssize_t)sizeof(rj_insn));
    p->code = malloc(code.len ? (size_t)code.len : 1);
    p->max_stack = max_stack;
    p->n_rules = (uint32_t)PyList_GET_SIZE(rules);
    p->rules = calloc(p->n_rules ? p->n_rules : 1, sizeof(rj_rule_code));
    p->n_regex = (uint32_t)PyList_GET_SIZE(regexes);
    p->regex = calloc(p->n_regex ? p->n_regex : 1, sizeof(regex_t));
    p->regex_standin = calloc(p->n_regex ? p->n_regex : 1, sizeof(uint32_t));
    if (!p->code || !p->rules || !p->regex || !p->regex_standin) {
        PyErr_NoMemory();
        goto out;
    }
    memcpy(p->code, code.buf, (size_t)code.len);
    for (uint32_t r = 0; r < p->n_rules; r++) {
        rj_rule_code *rc_ = &p->rules[r];
        PyObject *guards, *pre, *tree = NULL;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(rules, r), "IIO!O!I|O!", &rc_->entry, &rc_->stop,
                              &PyTuple_Type, &guards, &PyTuple_Type, &pre, &rc_->shape,
                              &PyTuple_Type, &tree))
            goto out;
        if (PyTuple_GET_SIZE(guards) > RJ_MAX_GUARDS) {
            bad("too many rule guards");
            goto out;
        }
        rc_->n_guards = (uint32_t)PyTuple_GET_SIZE(guards);
        for (uint32_t j = 0; j < rc_->n_guards; j++) {
            rj_rule_guard *gd = &rc_->guards[j];
            if (!PyArg_ParseTuple(PyTuple_GET_ITEM(guards, j), "IIII", &gd->slot, &gd->off,
                                  &gd->len, &gd->kind))
                goto out;
        }
        if (rc_->shape == RJ_SHAPE_TREE) {
            Py_ssize_t n = tree ? PyTuple_GET_SIZE(tree) : 0;
            if (n < 1 || n > RJ_TREE_MAX_TOKENS) {
                bad("bad rule tree size");
                goto out;
            }
            int32_t *grown = realloc(p->tree, (p->n_tree + (size_t)n) * sizeof(int32_t));
            if (!grown) {
                PyErr_NoMemory();
                goto out;
            }
            p->tree = grown;
            rc_->tree_off = p->n_tree;
            rc_->tree_len = (uint32_t)n;
            for (Py_ssize_t i = 0; i < n; i++) {
                long t = PyLong_AsLong(PyTuple_GET_ITEM(tree, i));
                if ((t == -1 && PyErr_Occurred()) || t < INT32_MIN || t > INT32_MAX) {
                    if (!PyErr_Occurred())
                        bad("rule tree token out of range");
                    goto out;
                }
                p->tree[p->n_tree++] = (int32_t)t;
            }
        }
        if (rc_->shape > RJ_SHAPE_TREE) {
            bad("unknown rule shape");
            goto out;
        }
        if (PyTuple_GET_SIZE(pre) > RJ_MAX_ATOMS) {
            bad("too many atoms for one rule");
            goto out;
        }
        for (int a = 0; a < RJ_MAX_ATOMS; a++) {
            rc_->pre[a] = a < PyTuple_GET_SIZE(pre) ? (int32_t)PyLong_AsLong(PyTuple_GET_ITEM(pre, a)) : -1;
            if (PyErr_Occurred())
                goto out;
        }
    }
    p->n_atoms = atoms ? (uint32_t)PyList_GET_SIZE(atoms) : 0;
    p->atoms = calloc(p->n_atoms ? p->n_atoms : 1, sizeof(rj_atom));
    if (!p->atoms) {
        PyErr_NoMemory();
        goto out;
    }
    for (uint32_t i = 0; i < p->n_atoms; i++) {
        rj_atom *a = &p->atoms[i];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(atoms, i), "HHiI", &a->op, &a->a, &a->arg, &a->negate))
            goto out;
    }
    for (uint32_t i = 0; i < p->n_regex; i++) {
        /* (POSIX pattern, stand-in code point: U+E000 or U+D7FF) */
        const char *re;
        unsigned int standin;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(regexes, i), "sI", &re, &standin))
            goto out;
        if (standin != 0xE000 && standin != 0xD7FF) {
            bad("regex stand-in must be U+E000 or U+D7FF");
            goto out;
        }
        p->regex_standin[i] = standin;
        /* Compiled in the same UTF-8 locale the VM matches in. */
        locale_t u = rj_utf8_locale(), old = u ? uselocale(u) : (locale_t)0;
        int e = regcomp(&p->regex[i], re, REG_EXTENDED);
        if (u)
            uselocale(old);
        if (e) {
            char msg[256];
            regerror(e, &p->regex[i], msg, sizeof msg);
            p->n_regex = i; /* only the compiled ones get regfree */
            PyErr_Format(PyExc_ValueError, "regex %s: %s", re, msg);
            goto out;
        }
    }
    if (build_consts(self, consts) < 0 || check_code(p) < 0)
        goto out;
    if (rj_program_index(p) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    self->ready = 1;
    rc = 0;
out:
    PyBuffer_Release(&code);
    return rc;
}

static void program_dealloc(Program *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    rj_program *p = &self->prog;
    for (uint32_t i = 0; p->regex && i < p->n_regex; i++)
        regfree(&p->regex[i]);
    free(p->regex);
    free(p->regex_standin);
    free(p->code);
    free(p->consts);
    free(p->bytes);
    free(p->rules);
    free(p->atoms);
    free(p->tree);
    rj_program_free_index(p);
    Py_XDECREF(self->pathset);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *u64_list(const uint64_t *v, uint32_t n)
{
    PyObject *l = PyList_New(n);
    for (uint32_t i = 0; l && i < n; i++) {
        PyObject *x = PyLong_FromUnsignedLongLong(v[i]);
        if (!x) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, x);
    }
    return l;
}

static PyObject *result_to_py(const rj_run_result *r, uint32_t n_rules)
{
    PyObject *errors = PyList_New((Py_ssize_t)r->n_errors);
    PyObject *matches = PyList_New((Py_ssize_t)r->n_matches);
    PyObject *counts = u64_list(r->counts, n_rules), *errs = u64_list(r->err_counts, n_rules);
    PyObject *res = NULL;
    if (!errors || !matches || !counts || !errs)
        goto out;
    for (size_t i = 0; i < r->n_errors; i++) {
        const rj_line_error *e = &r->errors[i];
        PyObject *t = Py_BuildValue("(KKKs)", (unsigned long long)e->line,
                                    (unsigned long long)e->offset,
                                    (unsigned long long)e->column, e->msg);
        if (!t)
            goto out;
        PyList_SET_ITEM(errors, (Py_ssize_t)i, t);
    }
    for (size_t i = 0; i < r->n_matches; i++) {
        const rj_match *m = &r->matches[i];
        PyObject *ids = PyTuple_New(m->rules_len);
        for (uint32_t j = 0; ids && j < m->rules_len; j++)
            PyTuple_SET_ITEM(ids, j, PyLong_FromUnsignedLong(r->match_rules[m->rules_off + j]));
        PyObject *t = ids ? Py_BuildValue("(KKIN)", (unsigned long long)m->line,
                                          (unsigned long long)m->offset, m->length, ids)
                          : NULL;
        if (!t)
            goto out;
        PyList_SET_ITEM(matches, (Py_ssize_t)i, t);
    }
    res = Py_BuildValue("(KKKOOOOK)", (unsigned long long)r->lines, (unsigned long long)r->blank,
                        (unsigned long long)r->bad_lines, counts, errs, errors, matches,
                        (unsigned long long)r->allocations);
out:
    Py_XDECREF(errors);
    Py_XDECREF(matches);
    Py_XDECREF(counts);
    Py_XDECREF(errs);
    return res;
}

/* flags[r] |= flag for every rule index in the sequence seq_obj. */
static int set_flags(uint8_t *flags, uint32_t nr, PyObject *seq_obj, uint8_t flag, const char *what)
{
    PyObject *seq = PySequence_Fast(seq_obj, what);
    if (!seq)
        return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        Py_ssize_t r = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
        if (r < 0 || (size_t)r >= nr) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_IndexError, "%s: rule index out of range", what);
            Py_DECREF(seq);
            return -1;
        }
        flags[r] |= flag;
    }
    Py_DECREF(seq);
    return 0;
}

static PyObject *program_run(Program *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"buffer", "first_line", "collect", "max_errors", "collect_errors",
                            "readahead", "offset", NULL};
    Py_buffer buf;
    unsigned long long first_line = 1;
    PyObject *collect_obj = Py_None, *errors_obj = Py_None, *ahead_obj = Py_None;
    Py_ssize_t max_errors = 100, offset = 0;
    if (!self->ready)
        return PyErr_Format(PyExc_RuntimeError, "Program is not initialized");
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|$KOnOOn:run", names, &buf, &first_line,
                                     &collect_obj, &max_errors, &errors_obj, &ahead_obj,
                                     &offset))
        return NULL;
    uint32_t nr = self->prog.n_rules;
    uint8_t *collect = NULL;
    PyObject *res = NULL;
    rj_run_result r;
    int have_result = 0;
    if (max_errors < 0) {
        PyErr_SetString(PyExc_ValueError, "max_errors must be >= 0");
        goto out;
    }
    rj_ahead *ahead = NULL;
    if (ahead_obj != Py_None) {
        size_t ahead_len;
        rj_state *st = rj_state_from_type(Py_TYPE(self));
        if (!(ahead = rj_readahead_of(st, ahead_obj, &ahead_len)))
            goto out;
        if (offset < 0 || (size_t)offset > ahead_len ||
            (size_t)buf.len > ahead_len - (size_t)offset) {
            PyErr_SetString(PyExc_ValueError,
                            "offset and the buffer must lie within the readahead's buffer");
            goto out;
        }
    }
    if (collect_obj != Py_None || errors_obj != Py_None) {
        collect = calloc(nr ? nr : 1, 1);
        if (!collect) {
            PyErr_NoMemory();
            goto out;
        }
    }
    if ((collect_obj != Py_None &&
         set_flags(collect, nr, collect_obj, RJ_COLLECT_MATCHES, "collect") < 0) ||
        (errors_obj != Py_None &&
         set_flags(collect, nr, errors_obj, RJ_COLLECT_ERRORS, "collect_errors") < 0))
        goto out;
    if (rj_run_result_init(&r, nr, (size_t)max_errors) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    have_result = 1;
    const rj_kernel *k = rj_kernel_active();
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rj_run_lines(&self->prog, k, buf.buf, (size_t)buf.len, first_line, collect, ahead,
                      (size_t)offset, &r);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_NoMemory();
        goto out;
    }
    res = result_to_py(&r, nr);
out:
    if (have_result)
        rj_run_result_free(&r);
    free(collect);
    PyBuffer_Release(&buf);
    return res;
}

/* Evaluate one document: (matched rule indexes, errored rule indexes). */
static PyObject *program_eval(Program *self, PyObject *arg)
{
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    Py_buffer buf;
    if (!self->ready)
        return PyErr_Format(PyExc_RuntimeError, "Program is not initialized");
    if (PyObject_GetBuffer(arg, &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    const rj_program *p = &self->prog;
    uint32_t nr = p->n_rules;
    rj_value *row = malloc((p->ps->n_slots ? p->ps->n_slots : 1) * sizeof(rj_value));
    uint32_t *matched = malloc((nr ? nr : 1) * sizeof(uint32_t));
    uint64_t *errs = calloc(nr ? nr : 1, sizeof(uint64_t));
    rj_scan_scratch scratch = {0};
    rj_vm vm;
    int vm_ok = 0;
    PyObject *res = NULL;
    if (!row || !matched || !errs || rj_scratch_init(&scratch, p->ps) < 0 ||
        rj_vm_init(&vm, p) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    vm_ok = 1;
    vm.re_memo_wanted = 0; /* one event: nothing to remember across */
    vm.vmemo_wanted = 0;
    rj_json_err jerr = {0, NULL};
    const rj_kernel *k = rj_kernel_active();
    int rc = k->json_extract(p->ps, &scratch, buf.buf, 0, (size_t)buf.len, (size_t)buf.len, row, &jerr);
    if (rc) {
        rj_raise_json(st, rc, jerr.msg, buf.buf, jerr.offset);
        goto out;
    }
    uint32_t n = rj_vm_eval_event(&vm, row, buf.buf, matched, errs);
    PyObject *m = PyList_New(n), *e = PyList_New(0);
    for (uint32_t i = 0; m && i < n; i++)
        PyList_SET_ITEM(m, i, PyLong_FromUnsignedLong(matched[i]));
    for (uint32_t r = 0; m && e && r < nr; r++) {
        if (!errs[r])
            continue;
        PyObject *x = PyLong_FromUnsignedLong(r);
        if (!x || PyList_Append(e, x) < 0) {
            Py_XDECREF(x);
            Py_CLEAR(m);
            break;
        }
        Py_DECREF(x);
    }
    if (m && e)
        res = PyTuple_Pack(2, m, e);
    Py_XDECREF(m);
    Py_XDECREF(e);
out:
    if (vm_ok)
        rj_vm_free(&vm);
    rj_scratch_free(&scratch);
    free(row);
    free(matched);
    free(errs);
    PyBuffer_Release(&buf);
    return res;
}

static PyObject *py_format_double(PyObject *m, PyObject *arg)
{
    (void)m;
    double d = PyFloat_AsDouble(arg);
    if (d == -1.0 && PyErr_Occurred())
        return NULL;
    char buf[40];
    size_t n = rj_format_double(d, buf);
    return PyUnicode_FromStringAndSize(buf, (Py_ssize_t)n);
}

static PyMethodDef program_methods[] = {
    {"run", (PyCFunction)(void (*)(void))program_run, METH_VARARGS | METH_KEYWORDS,
     "run(buffer, *, first_line=1, collect=None, max_errors=100, collect_errors=None, "
     "readahead=None, offset=0) -> (lines, blank, bad, counts, eval_errors, errors, matches); "
     "a rule r of collect_errors that errs on an event is listed in that event's match record "
     "as n_rules + r; readahead: a Readahead over a buffer in which this one starts at offset"},
    {"eval", (PyCFunction)program_eval, METH_O,
     "eval(document) -> (matched rule indexes, errored rule indexes)"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot program_slots[] = {
    {Py_tp_init, program_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, program_dealloc},
    {Py_tp_methods, program_methods},
    {Py_tp_doc, "Program(pathset, code, consts, rules, regexes, max_stack): compiled rules."},
    {0, NULL},
};

static PyType_Spec program_spec = {
    .name = "rulejet._native.Program",
    .basicsize = sizeof(Program),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = program_slots,
};

/* write_lines(fd, buffer, spans): spans is a bytes-like of uint64 pairs
 * (offset, length) into buffer; each line is written with a newline. */
static PyObject *py_write_lines(PyObject *module, PyObject *args)
{
    int fd;
    Py_buffer buf, spans;
    if (!PyArg_ParseTuple(args, "iy*y*:write_lines", &fd, &buf, &spans))
        return NULL;
    PyObject *res = NULL;
    size_t n = (size_t)spans.len / (2 * sizeof(uint64_t));
    const uint64_t *sp = spans.buf;
    if (spans.len % (Py_ssize_t)(2 * sizeof(uint64_t))) {
        PyErr_SetString(PyExc_ValueError, "spans must hold (offset, length) uint64 pairs");
        goto out;
    }
    for (size_t i = 0; i < n; i++) /* hostile spans must stay inside buffer */
        if (sp[2 * i] > (uint64_t)buf.len || sp[2 * i + 1] > (uint64_t)buf.len - sp[2 * i]) {
            PyErr_SetString(PyExc_ValueError, "span outside the buffer");
            goto out;
        }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rj_write_lines(fd, buf.buf, sp, n);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        rj_raise_errno(rj_get_state(module), rc, NULL);
        goto out;
    }
    res = Py_NewRef(Py_None);
out:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&spans);
    return res;
}

PyMethodDef rj_program_functions[] = {
    {"write_lines", py_write_lines, METH_VARARGS,
     "write_lines(fd, buffer, spans): writev lines of buffer, each plus a newline."},
    {"format_double", py_format_double, METH_O, "A float as the VM's string() spells it."},
    {NULL, NULL, 0, NULL},
};

int rj_program_init_type(PyObject *module, rj_state *st)
{
    st->ProgramType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &program_spec, NULL);
    if (!st->ProgramType)
        return -1;
    if (PyModule_AddType(module, st->ProgramType) < 0)
        return -1;
    return PyModule_AddFunctions(module, rj_program_functions);
}
