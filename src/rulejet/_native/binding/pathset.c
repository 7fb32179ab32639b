/* pathset.c (binding): PathSet (compiled paths, extract, extract_lines,
 * scan_lines) and validate(). Paths arrive already parsed (rulejet/paths.py
 * owns the syntax); this file converts steps, calls the core, and turns
 * native values into Python objects.
 *
 * The per-object scratch is used only while the GIL is held; calls that
 * release the GIL allocate their own, so concurrent calls on one PathSet
 * from several threads never share mutable state.
 */
#include "module.h"

#include "../core/ahead.h"
#include "../core/dispatch.h"
#include "../core/json.h"
#include "../core/json_scalar.h"

#include <stdlib.h>
#include <string.h>

/* Rows per GIL-free stretch. Converting to Python needs the GIL, and a
 * chunk's text (about 1.6 MB of events) should still be in cache when its
 * strings are decoded; the native-only loop takes longer stretches, since
 * each reacquisition can wait a switch interval behind a busy thread. */
#define ROWS_PER_CHUNK_PY 4096
#define ROWS_PER_CHUNK_NATIVE 65536

typedef struct {
    PyObject_HEAD
    rj_pathset ps;
    rj_scan_scratch scratch;
    int ready;
} PathSet;

static int convert_step(PyObject *o, rj_step *s)
{
    memset(s, 0, sizeof *s);
    if (PyLong_Check(o)) {
        unsigned long long i = PyLong_AsUnsignedLongLong(o);
        if (PyErr_Occurred())
            return -1;
        s->kind = RJ_STEP_INDEX;
        s->index = i;
        return 0;
    }
    PyObject *key = o, *idx = NULL;
    if (PyTuple_Check(o) && PyTuple_GET_SIZE(o) == 2) {
        key = PyTuple_GET_ITEM(o, 0);
        idx = PyTuple_GET_ITEM(o, 1);
    }
    Py_ssize_t n = 0;
    const char *k = NULL;
    if (PyUnicode_Check(key))
        k = PyUnicode_AsUTF8AndSize(key, &n);
    else if (PyBytes_Check(key)) /* a key's UTF-8 (WTF-8 for lone surrogates), as given */
        PyBytes_AsStringAndSize(key, (char **)&k, &n);
    if (!k) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "a path step is a str (or its UTF-8 bytes), an int or (str, int)");
        return -1;
    }
    s->kind = RJ_STEP_KEY;
    s->key = k;
    s->key_len = (size_t)n;
    if (idx) {
        s->index = PyLong_AsUnsignedLongLong(idx);
        if (PyErr_Occurred())
            return -1;
        s->kind = RJ_STEP_KEY_OR_INDEX;
    }
    return 0;
}

static int pathset_init(PathSet *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"paths", NULL};
    PyObject *paths;
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "PathSet already initialized");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:PathSet", names, &paths))
        return -1;
    PyObject *seq = PySequence_Fast(paths, "paths must be a sequence of step lists");
    if (!seq)
        return -1;
    int rc = rj_pathset_init(&self->ps);
    if (rc)
        PyErr_NoMemory();
    rj_step *steps = NULL;
    for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *path = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, i), "a path is a list of steps");
        if (!path) {
            rc = -1;
            break;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(path);
        rj_step *grown = realloc(steps, (size_t)(n ? n : 1) * sizeof *steps);
        if (!grown) {
            Py_DECREF(path);
            PyErr_NoMemory();
            rc = -1;
            break;
        }
        steps = grown;
        for (Py_ssize_t j = 0; rc == 0 && j < n; j++)
            rc = convert_step(PySequence_Fast_GET_ITEM(path, j), &steps[j]);
        if (rc == 0 && (rc = rj_pathset_add(&self->ps, steps, (size_t)n)) < 0)
            PyErr_Format(PyExc_ValueError, "cannot add path %zd (too deep or out of memory)", i);
        Py_DECREF(path);
    }
    free(steps);
    Py_DECREF(seq);
    if (rc == 0 && (rj_pathset_finish(&self->ps) < 0 || rj_scratch_init(&self->scratch, &self->ps) < 0)) {
        PyErr_NoMemory();
        rc = -1;
    }
    if (rc) {
        rj_pathset_free(&self->ps);
        return -1;
    }
    self->ready = 1;
    return 0;
}

static void pathset_dealloc(PathSet *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    rj_pathset_free(&self->ps);
    rj_scratch_free(&self->scratch);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int check_ready(PathSet *self)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "PathSet is not initialized");
        return -1;
    }
    return 0;
}

PyObject *rj_raise_json(rj_state *st, int rc, const char *msg, const uint8_t *buf, size_t offset)
{
    uint64_t line = 1;
    size_t line_start = 0;
    for (const uint8_t *p = buf, *e = buf + offset; (p = memchr(p, '\n', (size_t)(e - p)));) {
        line++;
        line_start = (size_t)(++p - buf);
    }
    (void)rc;
    PyObject *args = Py_BuildValue("(s)", msg);
    PyObject *kw = Py_BuildValue("{s:K,s:K,s:K}", "offset", (unsigned long long)offset, "line",
                                 (unsigned long long)line, "column",
                                 (unsigned long long)(offset - line_start + 1));
    if (args && kw) {
        PyObject *exc = PyObject_Call(st->JSONError, args, kw);
        if (exc) {
            PyErr_SetObject(st->JSONError, exc);
            Py_DECREF(exc);
        }
    }
    Py_XDECREF(args);
    Py_XDECREF(kw);
    return NULL;
}

/* Recently made short strings, reused by content: event streams repeat
 * their enum-like values ("view", "US") millions of times, and a hit
 * costs a compare instead of a decode and an allocation. Direct-mapped;
 * lives for one extract_lines call. */
#define SC_BITS 10
#define SC_MAXLEN 32

typedef struct {
    PyObject *str;
    uint32_t len;
    char bytes[SC_MAXLEN];
} sc_entry;

typedef struct {
    sc_entry e[1 << SC_BITS];
    const char *limit; /* the buffer's end: 8-byte loads may run up to it */
} strcache;

static inline PyObject *cached_str(strcache *sc, const char *p, uint32_t len)
{
    /* Hash the first and last 8 bytes and the length: cheap, and enough to
     * tell apart the enum-like values this cache is for (a collision only
     * costs a miss: the full compare below decides). */
    uint64_t head = 0, tail = 0;
    if (sc->limit - p >= 8) { /* one load: a short copy would stall the hash's read */
        memcpy(&head, p, 8);
        if (len < 8)
            head &= (1ULL << (8 * len)) - 1;
    } else {
        memcpy(&head, p, len < 8 ? len : 8);
    }
    if (len > 8)
        memcpy(&tail, p + len - 8, 8);
    uint64_t h = ((head * 0x9E3779B97F4A7C15ULL) ^ tail ^ len) * 0xff51afd7ed558ccdULL;
    sc_entry *e = &sc->e[h >> (64 - SC_BITS)];
    if (e->str && e->len == len &&
        rj_bytes_equal((const uint8_t *)e->bytes, (const uint8_t *)p, len))
        return Py_NewRef(e->str);
    PyObject *s = PyUnicode_DecodeUTF8(p, len, "surrogatepass");
    if (s) {
        Py_XSETREF(e->str, Py_NewRef(s));
        e->len = len;
        memcpy(e->bytes, p, len);
    }
    return s;
}

static void strcache_free(strcache *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < (1u << SC_BITS); i++)
        Py_XDECREF(sc->e[i].str);
    PyMem_Free(sc);
}

/* One native value as a Python object (a new reference). */
static PyObject *to_py(rj_state *st, const rj_value *v, const char *base, rj_pinned *pb,
                       strcache *sc)
{
    const char *p = base + v->off;
    switch (v->type) {
    case RJ_V_MISSING: return Py_NewRef(st->MISSING);
    case RJ_V_NULL: Py_RETURN_NONE;
    case RJ_V_FALSE: Py_RETURN_FALSE;
    case RJ_V_TRUE: Py_RETURN_TRUE;
    case RJ_V_INT: return PyLong_FromLongLong(v->num.i);
    case RJ_V_DOUBLE: return PyFloat_FromDouble(v->num.d);
    case RJ_V_BIGINT: {
        char stack_buf[64];
        char *buf = v->len < sizeof stack_buf ? stack_buf : PyMem_Malloc(v->len + 1);
        if (!buf)
            return PyErr_NoMemory();
        memcpy(buf, p, v->len);
        buf[v->len] = 0;
        PyObject *r = PyLong_FromString(buf, NULL, 10);
        if (buf != stack_buf)
            PyMem_Free(buf);
        if (!r && PyErr_ExceptionMatches(PyExc_ValueError)) {
            /* Past sys.get_int_max_str_digits(): json.loads refuses it too. */
            PyErr_Clear();
            return rj_raise_json(st, RJ_EJSON,
                                 "integer with more digits than Python converts "
                                 "(sys.get_int_max_str_digits())",
                                 (const uint8_t *)base, v->off);
        }
        return r;
    }
    case RJ_V_STRING: {
        if (!(v->flags & RJ_VF_ESCAPED))
            return sc && v->len <= SC_MAXLEN ? cached_str(sc, p, v->len)
                                             : PyUnicode_DecodeUTF8(p, v->len, "surrogatepass");
        char stack_buf[256];
        char *buf = v->len <= sizeof stack_buf ? stack_buf : PyMem_Malloc(v->len ? v->len : 1);
        if (!buf)
            return PyErr_NoMemory();
        size_t n = rj_unescape((const uint8_t *)p, v->len, (uint8_t *)buf);
        PyObject *r = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)n, "surrogatepass");
        if (buf != stack_buf)
            PyMem_Free(buf);
        return r;
    }
    default: { /* object or array */
        PyObject *pin = rj_pin_get(st, pb);
        return pin ? rj_rawjson_new(st, pin, p, v->len) : NULL;
    }
    }
}

static PyObject *pathset_extract(PathSet *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"document", "validate", NULL};
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    rj_pinned pb = {0};
    int validate = 0;
    if (check_ready(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kw, "y*|$p:extract", names, &pb.view, &validate))
        return NULL;
    const rj_kernel *k = rj_kernel_active();
    const uint8_t *buf = pb.view.buf;
    size_t len = (size_t)pb.view.len, slots = self->ps.n_slots;
    rj_value stack_vals[32];
    rj_value *vals = slots <= 32 ? stack_vals : PyMem_Malloc(slots * sizeof(rj_value));
    PyObject *result = NULL;
    if (!vals) {
        PyErr_NoMemory();
        goto done;
    }
    rj_json_err err = {0, NULL};
    int rc = 0;
    if (pb.view.len > RJ_GIL_THRESHOLD) {
        rj_scan_scratch scratch;
        if (rj_scratch_init(&scratch, &self->ps) < 0) {
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        if (validate)
            rc = k->json_validate(buf, 0, len, &err);
        if (rc == 0)
            rc = k->json_extract(&self->ps, &scratch, buf, 0, len, len, vals, &err);
        Py_END_ALLOW_THREADS
        rj_scratch_free(&scratch);
    } else {
        if (validate)
            rc = k->json_validate(buf, 0, len, &err);
        if (rc == 0)
            rc = k->json_extract(&self->ps, &self->scratch, buf, 0, len, len, vals, &err);
    }
    if (rc) {
        rj_raise_json(st, rc, err.msg, buf, err.offset);
        goto done;
    }
    result = PyList_New(self->ps.n_paths);
    for (uint32_t i = 0; result && i < self->ps.n_paths; i++) {
        PyObject *o = to_py(st, &vals[self->ps.path_slot[i]], (const char *)buf, &pb, NULL);
        if (!o)
            Py_CLEAR(result);
        else
            PyList_SET_ITEM(result, i, o);
    }
done:
    if (vals != stack_vals)
        PyMem_Free(vals);
    rj_pinned_done(&pb);
    return result;
}

/* Values of one column, owned references in a growing C array: no list
 * (and no garbage-collector bookkeeping) until the end. */
typedef struct {
    PyObject **items;
    size_t n, cap;
} pycol;

static void pycols_free(pycol *cols, uint32_t n)
{
    for (uint32_t i = 0; cols && i < n; i++) {
        for (size_t k = 0; k < cols[i].n; k++)
            Py_DECREF(cols[i].items[k]);
        PyMem_Free(cols[i].items);
    }
    PyMem_Free(cols);
}

/* A batch's rows appended to the columns. */
static int rows_to_py(rj_state *st, PathSet *self, const rj_batch *b, const char *base,
                      rj_pinned *pb, strcache *sc, pycol *cols, size_t expect)
{
    for (uint32_t i = 0; i < self->ps.n_paths; i++) {
        pycol *c = &cols[i];
        if (c->n + b->rows > c->cap) {
            size_t cap = c->cap ? c->cap : expect > 4096 ? expect : 4096;
            while (cap < c->n + b->rows)
                cap *= 2;
            PyObject **items = PyMem_Realloc(c->items, cap * sizeof *items);
            if (!items) {
                PyErr_NoMemory();
                return -1;
            }
            c->items = items;
            c->cap = cap;
        }
        uint32_t slot = self->ps.path_slot[i];
        for (size_t r = 0; r < b->rows; r++) {
            const rj_value *v = &b->values[r * self->ps.n_slots + slot];
            PyObject *o;
            /* The commonest kinds inline; the rest through to_py. */
            if (v->type == RJ_V_STRING && !(v->flags & RJ_VF_ESCAPED) && v->len <= SC_MAXLEN)
                o = cached_str(sc, base + v->off, v->len);
            else if (v->type == RJ_V_INT)
                o = PyLong_FromLongLong(v->num.i);
            else
                o = to_py(st, v, base, pb, sc);
            if (!o)
                return -1;
            c->items[c->n++] = o;
        }
    }
    return 0;
}

/* The columns as lists: each column's array (PyMem memory, as a list's
 * own) becomes the list's item array, so the references and the memory
 * move without a copy. */
static PyObject *columns_to_lists(pycol *cols, uint32_t n)
{
    PyObject *out = PyList_New(n);
    for (uint32_t i = 0; out && i < n; i++) {
        PyObject *col = PyList_New(0);
        if (!col) {
            Py_CLEAR(out);
            break;
        }
        if (cols[i].n) {
            PyObject **items = PyMem_Realloc(cols[i].items, cols[i].n * sizeof(PyObject *));
            if (!items) /* shrinking failed: keep the larger array */
                items = cols[i].items;
            PyListObject *list = (PyListObject *)col;
            list->ob_item = items;
            list->allocated = (Py_ssize_t)cols[i].n;
            Py_SET_SIZE(list, (Py_ssize_t)cols[i].n);
            cols[i].items = NULL;
            cols[i].n = cols[i].cap = 0;
        }
        PyList_SET_ITEM(out, i, col);
    }
    return out;
}

/* Integers too long for Python (sys.get_int_max_str_digits(), never below
 * 640 digits when set): their lines become malformed lines, like json.loads
 * refusing them, so one such line cannot end the whole extraction.
 * first_line is the batch's first row's line; present[] (values found per
 * path) loses the rejected rows' values. 0, or -1 with an exception. */
#define RJ_MIN_INT_DIGITS_LIMIT 640
static int reject_unconvertible_rows(PathSet *self, rj_batch *b, const char *base,
                                     uint64_t first_line, uint64_t *present)
{
    size_t slots = self->ps.n_slots;
    for (size_t r = 0; r < b->rows; r++) {
        for (uint32_t i = 0; i < self->ps.n_paths; i++) {
            const rj_value *v = &b->values[r * slots + self->ps.path_slot[i]];
            if (v->type != RJ_V_BIGINT || v->len <= RJ_MIN_INT_DIGITS_LIMIT)
                continue;
            char *text = PyMem_Malloc(v->len + 1);
            if (!text) {
                PyErr_NoMemory();
                return -1;
            }
            memcpy(text, base + v->off, v->len);
            text[v->len] = 0;
            PyObject *n = PyLong_FromString(text, NULL, 10);
            PyMem_Free(text);
            if (n) {
                Py_DECREF(n);
                continue;
            }
            if (!PyErr_ExceptionMatches(PyExc_ValueError))
                return -1;
            PyErr_Clear();
            for (uint32_t j = 0; j < self->ps.n_paths; j++) /* counted as found */
                present[j] -= b->values[r * slots + self->ps.path_slot[j]].type != RJ_V_MISSING;
            uint64_t off = v->off, line_start = off;
            while (line_start > 0 && base[line_start - 1] != '\n')
                line_start--;
            if (rj_batch_reject_row(b, slots, r, first_line + r, off, off - line_start + 1,
                                    "integer with more digits than Python converts "
                                    "(sys.get_int_max_str_digits())") < 0) {
                PyErr_NoMemory();
                return -1;
            }
            break; /* the row is all MISSING now */
        }
    }
    return 0;
}

/* Append a batch's errors as (line, offset, column, message) tuples. */
static int errors_to_py(const rj_batch *b, PyObject *errors)
{
    for (size_t e = 0; e < b->n_errors; e++) {
        const rj_line_error *le = &b->errors[e];
        PyObject *t = Py_BuildValue("(KKKs)", (unsigned long long)le->line,
                                    (unsigned long long)le->offset,
                                    (unsigned long long)le->column, le->msg);
        if (!t || PyList_Append(errors, t) < 0) {
            Py_XDECREF(t);
            return -1;
        }
        Py_DECREF(t);
    }
    return 0;
}

/* The rows a buffer likely holds, judged from the first chunk's line
 * lengths (with room to spare): columns sized once grow without copies.
 * Capped, so that short first lines in a huge buffer cannot ask for an
 * array far beyond what the rest needs; past the cap, columns double. */
#define EXPECTED_ROWS_CAP ((size_t)1 << 23)
static size_t expected_rows(const rj_batch *b, size_t pos, size_t buf_len)
{
    if (!pos || !b->rows)
        return 0;
    double rows = (double)b->rows * ((double)buf_len / (double)pos) * 1.05 + 16;
    return rows < (double)EXPECTED_ROWS_CAP ? (size_t)rows : EXPECTED_ROWS_CAP;
}

/* Shared loop of extract_lines and scan_lines: scan chunk after chunk
 * with the GIL released; `materialize` converts each chunk to Python,
 * otherwise present[] counts the values found per path. */
static PyObject *scan_buffer(PathSet *self, PyObject *args, PyObject *kw, int materialize)
{
    static char *names[] = {"buffer", NULL};
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    rj_pinned pb = {0};
    if (check_ready(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kw, "y*:extract_lines", names, &pb.view))
        return NULL;
    const rj_kernel *k = rj_kernel_active();
    const char *base = pb.view.buf; /* stays valid after the view moves into a Pin */
    rj_scan_scratch scratch = {0};
    rj_batch batch = {0};
    rj_ahead ahead = {0};
    PyObject *errors = PyList_New(0), *result = NULL;
    pycol *columns = NULL;
    uint64_t *present = PyMem_Calloc(self->ps.n_paths + 1, sizeof(uint64_t));
    uint64_t line_no = 1, blank = 0, n_errors = 0;
    size_t pos = 0;
    strcache *sc = materialize ? PyMem_Calloc(1, sizeof(strcache)) : NULL;
    if (sc)
        sc->limit = base + pb.view.len;
    if (rj_scratch_init(&scratch, &self->ps) < 0 || !present || (materialize && !sc)) {
        PyErr_NoMemory();
        goto done;
    }
    if (!errors)
        goto done;
    if (materialize && !(columns = PyMem_Calloc(self->ps.n_paths, sizeof(pycol)))) {
        PyErr_NoMemory();
        goto done;
    }
    size_t buf_len = (size_t)pb.view.len;
    /* A helper faulting the buffer in ahead of the scan (core/ahead.h),
     * when another CPU can run it; stopped before the buffer is released. */
    if (rj_ahead_spare_cpu())
        rj_ahead_start(&ahead, (const uint8_t *)base, buf_len);
    while (pos < buf_len) {
        int rc;
        rj_batch_clear(&batch);
        uint64_t first_line = line_no;
        rj_ahead_note(&ahead, pos);
        Py_BEGIN_ALLOW_THREADS
        rc = rj_json_extract_lines(k, &self->ps, &scratch, (const uint8_t *)base, buf_len,
                                   &pos, &line_no,
                                   materialize ? ROWS_PER_CHUNK_PY : ROWS_PER_CHUNK_NATIVE, &batch);
        for (size_t r = 0; r < batch.rows; r++)
            for (uint32_t i = 0; i < self->ps.n_paths; i++)
                present[i] += batch.values[r * self->ps.n_slots + self->ps.path_slot[i]].type != RJ_V_MISSING;
        Py_END_ALLOW_THREADS
        if (rc < 0) {
            PyErr_NoMemory();
            goto done;
        }
        if (materialize && reject_unconvertible_rows(self, &batch, base, first_line, present) < 0)
            goto done;
        blank += batch.blank;
        n_errors += batch.n_errors;
        if (errors_to_py(&batch, errors) < 0 ||
            (materialize && rows_to_py(st, self, &batch, base, &pb, sc, columns,
                                       expected_rows(&batch, pos, buf_len)) < 0))
            goto done;
        if (PyErr_CheckSignals() < 0)
            goto done;
    }
    PyObject *counts = PyList_New(self->ps.n_paths);
    for (uint32_t i = 0; counts && i < self->ps.n_paths; i++) {
        PyObject *c = PyLong_FromUnsignedLongLong(present[i]);
        if (!c)
            Py_CLEAR(counts);
        else
            PyList_SET_ITEM(counts, i, c);
    }
    if (counts && materialize) {
        PyObject *flat = columns_to_lists(columns, self->ps.n_paths);
        if (flat)
            result = Py_BuildValue("(NOKKN)", flat, errors, (unsigned long long)(line_no - 1),
                                   (unsigned long long)blank, counts);
        else
            Py_DECREF(counts);
    } else if (counts) {
        result = Py_BuildValue("(KKKN)", (unsigned long long)(line_no - 1),
                               (unsigned long long)n_errors, (unsigned long long)blank, counts);
    }
done:
    if (ahead.running) {
        Py_BEGIN_ALLOW_THREADS
        rj_ahead_stop(&ahead);
        Py_END_ALLOW_THREADS
    }
    pycols_free(columns, self->ps.n_paths);
    Py_XDECREF(errors);
    strcache_free(sc);
    PyMem_Free(present);
    rj_batch_free(&batch);
    rj_scratch_free(&scratch);
    rj_pinned_done(&pb);
    return result;
}

static PyObject *pathset_extract_lines(PathSet *self, PyObject *args, PyObject *kw)
{
    return scan_buffer(self, args, kw, 1);
}

static PyObject *pathset_scan_lines(PathSet *self, PyObject *args, PyObject *kw)
{
    return scan_buffer(self, args, kw, 0);
}

static PyObject *get_n_paths(PathSet *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLong(self->ps.n_paths);
}

static PyObject *get_n_slots(PathSet *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLong(self->ps.n_slots);
}

static PyObject *get_path_slots(PathSet *self, void *Py_UNUSED(c))
{
    PyObject *l = PyList_New(self->ps.n_paths);
    for (uint32_t i = 0; l && i < self->ps.n_paths; i++) {
        PyObject *x = PyLong_FromUnsignedLong(self->ps.path_slot[i]);
        if (!x) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, x);
    }
    return l;
}

static PyGetSetDef pathset_getset[] = {
    {"path_slots", (getter)get_path_slots, NULL, "The value slot of each path.", NULL},
    {"n_paths", (getter)get_n_paths, NULL, "Number of paths.", NULL},
    {"n_slots", (getter)get_n_slots, NULL, "Number of distinct paths.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef pathset_methods[] = {
    {"extract", (PyCFunction)(void (*)(void))pathset_extract, METH_VARARGS | METH_KEYWORDS,
     "extract(document, *, validate=False) -> list of values"},
    {"extract_lines", (PyCFunction)(void (*)(void))pathset_extract_lines,
     METH_VARARGS | METH_KEYWORDS,
     "extract_lines(buffer) -> (columns, errors, lines, blank, present)"},
    {"scan_lines", (PyCFunction)(void (*)(void))pathset_scan_lines, METH_VARARGS | METH_KEYWORDS,
     "scan_lines(buffer) -> (lines, errors, blank, present): the native loop only"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot pathset_slots[] = {
    {Py_tp_init, pathset_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, pathset_dealloc},
    {Py_tp_methods, pathset_methods},
    {Py_tp_getset, pathset_getset},
    {Py_tp_doc, "PathSet(paths): compiled paths (lists of steps) in one trie."},
    {0, NULL},
};

static PyType_Spec pathset_spec = {
    .name = "rulejet._native.PathSet",
    .basicsize = sizeof(PathSet),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = pathset_slots,
};

/* The native trie of a PathSet object, for Program (NULL + TypeError). */
const rj_pathset *rj_pathset_of(PyObject *obj, rj_state *st)
{
    if (!PyObject_TypeCheck(obj, st->PathSetType) || !((PathSet *)obj)->ready) {
        PyErr_SetString(PyExc_TypeError, "expected an initialized _native.PathSet");
        return NULL;
    }
    return &((PathSet *)obj)->ps;
}

int rj_pathset_init_type(PyObject *module, rj_state *st)
{
    st->PathSetType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &pathset_spec, NULL);
    if (!st->PathSetType)
        return -1;
    return PyModule_AddType(module, st->PathSetType);
}

static PyObject *py_validate(PyObject *module, PyObject *arg)
{
    rj_state *st = rj_get_state(module);
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const rj_kernel *k = rj_kernel_active();
    rj_json_err err = {0, NULL};
    int rc;
    if (view.len > RJ_GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        rc = k->json_validate(view.buf, 0, (size_t)view.len, &err);
        Py_END_ALLOW_THREADS
    } else {
        rc = k->json_validate(view.buf, 0, (size_t)view.len, &err);
    }
    if (rc)
        rj_raise_json(st, rc, err.msg, view.buf, err.offset);
    PyBuffer_Release(&view);
    if (rc)
        return NULL;
    Py_RETURN_NONE;
}

PyMethodDef rj_json_methods[] = {
    {"validate", py_validate, METH_O, "validate(buffer): raise JSONError unless valid RFC 8259."},
    {NULL, NULL, 0, NULL},
};
