/* ring.c (binding): RingBase, the shared-memory ring (core/ring.h) for
 * Python. Copies in and out happen with the GIL held (they are short, and
 * the GIL also serializes this process's callers, which SPSC needs);
 * waits release it, in slices, checking for signals between them.
 * rulejet/ring.py adds names, create/attach and unlink. */
#include <errno.h>
#include <time.h>

#include "../core/ring.h"
#include <math.h>

#include "module.h"

typedef struct {
    PyObject_HEAD
    rj_ring ring;
    int open;
    Py_ssize_t waiting; /* calls of this object sleeping without the GIL */
} Ring;

#define SLICE_NS 100000000LL /* check for signals every 100 ms of waiting */

static int check_open(Ring *self)
{
    if (self->open)
        return 0;
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    PyErr_SetString(st->ClosedError, "the ring is closed");
    return -1;
}

/* Publish what this object wrote or took, if it is still open (the ring
 * may have been closed while a call waited). */
static void commit_writes(Ring *self)
{
    if (self->open)
        rj_ring_commit_writes(&self->ring);
}

static void commit_reads(Ring *self)
{
    if (self->open)
        rj_ring_commit_reads(&self->ring);
}

static int ring_init(Ring *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"path", "create", "capacity", "mode", NULL};
    PyObject *path;
    int create = 0, mode = RJ_RING_SPSC;
    unsigned long long capacity = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|pKi:RingBase", names, PyUnicode_FSConverter,
                                     &path, &create, &capacity, &mode))
        return -1;
    if (self->open) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_RuntimeError, "ring already open");
        return -1;
    }
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    const char *why = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = create ? rj_ring_create(&self->ring, PyBytes_AS_STRING(path), capacity, mode)
                : rj_ring_attach(&self->ring, PyBytes_AS_STRING(path), &why);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        if (why)
            PyErr_Format(st->RingError, "%s: %s", PyBytes_AS_STRING(path), why);
        else if (rc == -EINVAL)
            PyErr_Format(PyExc_ValueError, "bad ring mode or capacity (%llu)", capacity);
        else
            rj_raise_errno(st, rc, path);
        Py_DECREF(path);
        return -1;
    }
    Py_DECREF(path);
    self->open = 1;
    return 0;
}

/* Deadline from a timeout argument: -1 forever (None), else ns from now. */
static int parse_timeout(PyObject *t, int64_t *deadline)
{
    if (!t || t == Py_None) {
        *deadline = -1;
        return 0;
    }
    double secs = PyFloat_AsDouble(t);
    if (secs == -1.0 && PyErr_Occurred())
        return -1;
    if (isnan(secs)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be a number of seconds or None, not NaN");
        return -1;
    }
    if (secs < 0)
        secs = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    *deadline = secs > 1e9 ? -1 : now + (int64_t)(secs * 1e9);
    return 0;
}

static int closed_while_waiting(Ring *self)
{
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    PyErr_SetString(st->ClosedError, "the ring was closed while this call waited");
    return -1;
}

/* Sleep for data (space_len < 0) or room for space_len bytes until the
 * deadline. 0 when it may be there; -1 with TimeoutError or a signal's
 * exception set. */
static int wait_ring(Ring *self, Py_ssize_t space_len, int64_t deadline, const char *what)
{
    for (;;) {
        if (atomic_load_explicit(&self->ring.cancelled, memory_order_relaxed))
            return closed_while_waiting(self);
        int64_t slice = SLICE_NS;
        if (deadline >= 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t left = deadline - ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
            if (left <= 0) {
                PyErr_Format(PyExc_TimeoutError, "ring: %s", what);
                return -1;
            }
            if (left < slice)
                slice = left;
        }
        int rc;
        self->waiting++;
        Py_BEGIN_ALLOW_THREADS
        rc = space_len < 0 ? rj_ring_wait_data(&self->ring, slice)
                           : rj_ring_wait_space(&self->ring, (size_t)space_len, slice);
        Py_END_ALLOW_THREADS
        self->waiting--;
        if (rc == 0)
            return 0;
        if (rc == -ECANCELED)
            return closed_while_waiting(self);
        if (PyErr_CheckSignals() < 0)
            return -1;
        if (check_open(self) < 0) /* a signal handler may have closed it */
            return -1;
    }
}

static int get_bytes(PyObject *obj, Py_buffer *view, const char **p, Py_ssize_t *n)
{
    if (PyBytes_CheckExact(obj)) {
        view->obj = NULL;
        *p = PyBytes_AS_STRING(obj);
        *n = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0)
        return -1;
    *p = view->buf;
    *n = view->len;
    return 0;
}

/* Write one message, waiting for room. 0, or -1 with an exception. */
static int put_one(Ring *self, PyObject *obj, int64_t deadline)
{
    Py_buffer view;
    const char *p;
    Py_ssize_t n;
    if (get_bytes(obj, &view, &p, &n) < 0)
        return -1;
    int rc = 0;
    for (;;) {
        int w = rj_ring_write(&self->ring, p, (size_t)n);
        if (w == 0)
            break;
        if (w == -EBADMSG) {
            PyErr_SetString(rj_state_from_type(Py_TYPE(self))->RingError,
                            "damaged ring: its slot sequence words are inconsistent");
            rc = -1;
            break;
        }
        if (w == -EMSGSIZE) {
            PyErr_Format(PyExc_ValueError,
                         "message of %zd bytes is larger than the ring takes (%llu)", n,
                         (unsigned long long)rj_ring_max_message(&self->ring));
            rc = -1;
            break;
        }
        commit_writes(self); /* the consumer may be waiting for these */
        if (wait_ring(self, n, deadline, "no room before the timeout") < 0) {
            rc = -1;
            break;
        }
        if (check_open(self) < 0) {
            rc = -1;
            break;
        }
    }
    if (view.obj)
        PyBuffer_Release(&view);
    return rc;
}

/* What every call starts with: at most pos_max positional arguments plus
 * an optional timeout (positional after them, or by keyword), an open
 * ring, and the deadline the timeout gives. 0, or -1 with an exception. */
static int call_prologue(Ring *self, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames, Py_ssize_t pos_max, int64_t *deadline)
{
    PyObject *timeout = nargs > pos_max ? args[pos_max] : NULL;
    if (nargs > pos_max + 1) {
        PyErr_SetString(PyExc_TypeError, "too many arguments");
        return -1;
    }
    Py_ssize_t nk = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nk; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(k, "timeout") != 0 || timeout) {
            PyErr_Format(PyExc_TypeError, "unexpected keyword argument %R", k);
            return -1;
        }
        timeout = args[nargs + i];
    }
    if (check_open(self) < 0)
        return -1;
    return parse_timeout(timeout, deadline);
}

static PyObject *ring_put(Ring *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    int64_t deadline;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "put(data, timeout=None)");
        return NULL;
    }
    if (call_prologue(self, args, nargs, kw, 1, &deadline) < 0)
        return NULL;
    if (put_one(self, args[0], deadline) < 0)
        return NULL;
    commit_writes(self);
    Py_RETURN_NONE;
}

static PyObject *ring_put_many(Ring *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    int64_t deadline;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "put_many(items, timeout=None)");
        return NULL;
    }
    if (call_prologue(self, args, nargs, kw, 1, &deadline) < 0)
        return NULL;
    /* A tuple of our own: waiting for room releases the GIL, and a list
     * another thread changes meanwhile would free items under us. */
    PyObject *seq = PySequence_Tuple(args[0]);
    if (!seq)
        return NULL;
    if (check_open(self) < 0) { /* iterating ran Python code: it may have closed the ring */
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (; i < n; i++)
        if (put_one(self, items[i], deadline) < 0)
            break;
    commit_writes(self);
    Py_DECREF(seq);
    if (i < n) {
        if (PyErr_ExceptionMatches(PyExc_TimeoutError)) {
            /* Say how many went in (attribute put_count): the caller
             * resends only the rest. */
            PyErr_Clear();
            PyObject *e = PyObject_CallFunction(
                PyExc_TimeoutError, "s", "ring: no room for every item before the timeout");
            PyObject *count = PyLong_FromSsize_t(i);
            if (e && count && PyObject_SetAttrString(e, "put_count", count) == 0) {
                PyObject *msg = PyUnicode_FromFormat(
                    "ring: put %zd of %zd items before the timeout", i, n);
                if (msg) {
                    PyObject *args = PyTuple_Pack(1, msg);
                    if (args)
                        PyObject_SetAttrString(e, "args", args);
                    Py_XDECREF(args);
                    Py_DECREF(msg);
                }
                PyErr_SetObject(PyExc_TimeoutError, e);
            }
            Py_XDECREF(count);
            Py_XDECREF(e);
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The next message as bytes, or NULL: with an exception, or (no error
 * set) when none is there now. */
static PyObject *take_one(Ring *self)
{
    rj_ring_msg m;
    int rc = rj_ring_peek(&self->ring, &m);
    if (rc == -EBADMSG)
        return PyErr_Format(rj_state_from_type(Py_TYPE(self))->RingError,
                            "damaged ring: a message's length or sequence word is inconsistent");
    if (rc < 0)
        return NULL;
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(m.n1 + m.n2));
    if (b) {
        memcpy(PyBytes_AS_STRING(b), m.p1, m.n1);
        if (m.n2)
            memcpy(PyBytes_AS_STRING(b) + m.n1, m.p2, m.n2);
    }
    /* Even on MemoryError the message is consumed: put back, it would
     * stall MPMC peers behind it. */
    rj_ring_done(&self->ring, &m);
    return b;
}

static int wait_data(Ring *self, int64_t deadline)
{
    commit_reads(self); /* a producer may be waiting for this room */
    if (wait_ring(self, -1, deadline, "no message before the timeout") < 0)
        return -1;
    return check_open(self);
}

static PyObject *ring_get(Ring *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    int64_t deadline;
    if (call_prologue(self, args, nargs, kw, 0, &deadline) < 0)
        return NULL;
    for (;;) {
        PyObject *b = take_one(self);
        if (b || PyErr_Occurred()) {
            commit_reads(self);
            return b;
        }
        if (wait_data(self, deadline) < 0)
            return NULL;
    }
}

static PyObject *ring_get_many(Ring *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kw)
{
    int64_t deadline;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "get_many(max_items, timeout=None)");
        return NULL;
    }
    Py_ssize_t max = PyLong_AsSsize_t(args[0]);
    if (max == -1 && PyErr_Occurred())
        return NULL;
    if (max < 1) {
        PyErr_SetString(PyExc_ValueError, "max_items must be >= 1");
        return NULL;
    }
    if (call_prologue(self, args, nargs, kw, 1, &deadline) < 0)
        return NULL;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    while (PyList_GET_SIZE(list) < max) {
        PyObject *b = take_one(self);
        if (b) {
            int rc = PyList_Append(list, b);
            Py_DECREF(b);
            if (rc < 0)
                goto fail;
            continue;
        }
        if (PyErr_Occurred())
            goto fail;
        if (PyList_GET_SIZE(list))
            break; /* what was there; no waiting for more */
        if (wait_data(self, deadline) < 0)
            goto fail;
    }
    commit_reads(self);
    return list;
fail:
    commit_reads(self);
    Py_DECREF(list);
    return NULL;
}

static PyObject *ring_close(Ring *self, PyObject *Py_UNUSED(a))
{
    if (self->waiting) {
        /* Calls sleeping on it in other threads wake and raise ClosedError;
         * the memory stays mapped until they have left. */
        rj_ring_cancel_waits(&self->ring);
        while (self->waiting) {
            Py_BEGIN_ALLOW_THREADS
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
            Py_END_ALLOW_THREADS
        }
    }
    if (self->open) {
        rj_ring_commit_writes(&self->ring);
        rj_ring_commit_reads(&self->ring);
        rj_ring_close(&self->ring);
        self->open = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *ring_info(Ring *self, PyObject *Py_UNUSED(a))
{
    if (check_open(self) < 0)
        return NULL;
    rj_ring_shared *sh = self->ring.sh;
    return Py_BuildValue(
        "{s:s,s:K,s:K,s:K,s:K,s:K}", "mode", self->ring.mode == RJ_RING_SPSC ? "spsc" : "mpmc",
        "capacity", (unsigned long long)self->ring.capacity, "max_message",
        (unsigned long long)rj_ring_max_message(&self->ring), "head",
        (unsigned long long)atomic_load(&sh->head), "tail", (unsigned long long)atomic_load(&sh->tail),
        "contention", (unsigned long long)self->ring.contention);
}

static void ring_dealloc(Ring *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->open) {
        rj_ring_commit_writes(&self->ring);
        rj_ring_commit_reads(&self->ring);
        rj_ring_close(&self->ring);
    }
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *ring_closed(Ring *self, void *Py_UNUSED(c)) { return PyBool_FromLong(!self->open); }

static PyGetSetDef ring_getset[] = {
    {"closed", (getter)ring_closed, NULL, "True after close()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define FASTKW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef ring_methods[] = {
    {"put", FASTKW(ring_put), "put(data, timeout=None): write one message"},
    {"put_many", FASTKW(ring_put_many), "put_many(items, timeout=None): write them in order"},
    {"get", FASTKW(ring_get), "get(timeout=None) -> bytes: the next message"},
    {"get_many", FASTKW(ring_get_many),
     "get_many(max_items, timeout=None) -> list: at least one message, at most max_items"},
    {"close", (PyCFunction)ring_close, METH_NOARGS, "Unmap (the ring file stays)."},
    {"info", (PyCFunction)ring_info, METH_NOARGS, "Mode, capacity, positions, contention."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot ring_slots[] = {
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, ring_init},
    {Py_tp_dealloc, ring_dealloc},
    {Py_tp_methods, ring_methods},
    {Py_tp_getset, ring_getset},
    {Py_tp_doc, "RingBase(path, create=False, capacity=0, mode=1): see rulejet.Ring."},
    {0, NULL},
};

static PyType_Spec ring_spec = {
    .name = "rulejet._native.RingBase",
    .basicsize = sizeof(Ring),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = ring_slots,
};

int rj_ring_init_type(PyObject *module, rj_state *st)
{
    st->RingType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &ring_spec, NULL);
    if (!st->RingType)
        return -1;
    return PyModule_AddType(module, st->RingType);
}
