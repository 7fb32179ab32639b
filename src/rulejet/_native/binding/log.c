/* log.c (binding): LogWriter over core/log.h, and the reader's scanning
 * functions. Appends copy with the GIL held (the record goes into the
 * fill buffer under a short mutex); every wait (for room, for a commit)
 * releases it. rulejet/log.py is the public API. */
#include <errno.h>
#include <stdlib.h>

#include "../core/crc32c.h"
#include "../core/log.h"
#include "module.h"

typedef struct {
    PyObject_HEAD
    rj_log *log;
    Py_buffer bufs[2]; /* the aligned buffers (from a BufferPool), held while open */
    int have_bufs;
    Py_ssize_t busy;   /* calls waiting without the GIL */
    rj_log_recovery rec;
    int sync_always;   /* sync="always": every append waits for its commit */
    /* Held across one append or append_many: a call's records are
     * consecutive (waiting for buffer room releases the GIL, and other
     * threads' records would land in the middle). */
    PyThread_type_lock appending;
} LogWriter;

static void lock_appends(LogWriter *self)
{
    if (!PyThread_acquire_lock(self->appending, NOWAIT_LOCK)) {
        self->busy++;
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->appending, WAIT_LOCK);
        Py_END_ALLOW_THREADS
        self->busy--;
    }
}

static int check_open(LogWriter *self)
{
    if (self->log)
        return 0;
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    PyErr_SetString(st->ClosedError, "the log is closed");
    return -1;
}

static PyObject *raise_log(LogWriter *self, int rc)
{
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    if (rc == -EMSGSIZE)
        return PyErr_Format(PyExc_ValueError, "record too large for this log's segments/buffers");
    if (rc == -ESHUTDOWN)
        return PyErr_Format(st->ClosedError, "the log is closing");
    return rj_raise_errno(st, rc, NULL);
}

static int writer_init(LogWriter *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"path",       "buffers",      "sync",   "backend",
                            "direct",     "strict",       "segment_bytes", "interval",
                            "retain_bytes", "retain_seconds", NULL};
    PyObject *path, *buffers;
    rj_log_options o = {0};
    double interval = 0.05;
    unsigned long long seg = 64ull << 20, rb = 0, rs = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O|iippKdKK:LogWriter", names,
                                     PyUnicode_FSConverter, &path, &buffers, &o.sync,
                                     &o.backend, &o.direct, &o.strict, &seg, &interval, &rb, &rs))
        return -1;
    if (self->log || self->have_bufs) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_RuntimeError, "already open");
        return -1;
    }
    if (!PyTuple_Check(buffers) || PyTuple_GET_SIZE(buffers) != 2) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_TypeError, "buffers must be a tuple of two writable buffers");
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(buffers, i), &self->bufs[i], PyBUF_WRITABLE) < 0) {
            if (i)
                PyBuffer_Release(&self->bufs[0]);
            Py_DECREF(path);
            return -1;
        }
    }
    self->have_bufs = 1;
    o.segment_bytes = seg;
    o.interval_ns = (uint64_t)(interval * 1e9);
    o.retain_bytes = rb;
    o.retain_seconds = rs;
    o.buffers[0] = self->bufs[0].buf;
    o.buffers[1] = self->bufs[1].buf;
    o.buffer_bytes = (size_t)(self->bufs[0].len < self->bufs[1].len ? self->bufs[0].len
                                                                     : self->bufs[1].len);
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    int rc;
    self->sync_always = o.sync == RJ_SYNC_ALWAYS;
    if (!self->appending && !(self->appending = PyThread_allocate_lock())) {
        PyBuffer_Release(&self->bufs[0]);
        PyBuffer_Release(&self->bufs[1]);
        self->have_bufs = 0;
        Py_DECREF(path);
        PyErr_NoMemory();
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = rj_log_open(&self->log, PyBytes_AS_STRING(path), &o, &self->rec);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyBuffer_Release(&self->bufs[0]);
        PyBuffer_Release(&self->bufs[1]);
        self->have_bufs = 0;
        self->log = NULL;
        if (rc == -EBADMSG) {
            PyObject *seg_path = PyUnicode_FromFormat("%s/%020llu.rjlog", PyBytes_AS_STRING(path),
                                                      (unsigned long long)self->rec.segment);
            PyObject *e = seg_path ? PyObject_CallFunction(
                                         st->LogCorruptionError, "sOK",
                                         "corrupt record in the middle of the last segment "
                                         "(strict=False opens it, dropping what follows)",
                                         seg_path, (unsigned long long)self->rec.offset)
                                   : NULL;
            if (e) {
                PyErr_SetObject(st->LogCorruptionError, e);
                Py_DECREF(e);
            }
            Py_XDECREF(seg_path);
        } else if (rc == -EBUSY) {
            PyErr_Format(st->BusyError, "%s: the log is open for writing elsewhere",
                         PyBytes_AS_STRING(path));
        } else if (rc == -EINVAL) {
            PyErr_SetString(PyExc_ValueError, "bad log options (sizes must be multiples of 4096)");
        } else {
            rj_raise_errno(st, rc, path);
        }
        Py_DECREF(path);
        return -1;
    }
    Py_DECREF(path);
    return 0;
}

/* Append one record; *seq set. 0 or -1 with an exception. */
static int append_one(LogWriter *self, PyObject *obj, uint64_t *seq)
{
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return -1;
    if ((size_t)view.len > UINT32_MAX) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "record too large");
        return -1;
    }
    uint32_t len = (uint32_t)view.len;
    uint32_t crc = rj_crc32c(0, view.buf, len);
    int rc;
    while ((rc = rj_log_try_append(self->log, view.buf, len, crc, seq)) == -EAGAIN) {
        self->busy++;
        Py_BEGIN_ALLOW_THREADS
        rc = rj_log_wait_room(self->log, len);
        Py_END_ALLOW_THREADS
        self->busy--;
        if (rc < 0)
            break;
    }
    PyBuffer_Release(&view);
    if (rc < 0) {
        raise_log(self, rc);
        return -1;
    }
    return 0;
}

static int wait_durable(LogWriter *self, uint64_t upto)
{
    int rc;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    rc = rj_log_wait_durable(self->log, upto);
    Py_END_ALLOW_THREADS
    self->busy--;
    if (rc < 0) {
        raise_log(self, rc);
        return -1;
    }
    return 0;
}

static PyObject *writer_append(LogWriter *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"data", "durable", NULL};
    PyObject *data;
    int durable = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$p:append", names, &data, &durable) ||
        check_open(self) < 0)
        return NULL;
    uint64_t seq;
    lock_appends(self);
    int rc = append_one(self, data, &seq);
    PyThread_release_lock(self->appending);
    if (rc < 0 || ((durable || self->sync_always) && wait_durable(self, seq + 1) < 0))
        return NULL;
    return PyLong_FromUnsignedLongLong(seq);
}

static PyObject *writer_append_many(LogWriter *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"items", "durable", NULL};
    PyObject *items;
    int durable = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$p:append_many", names, &items, &durable) ||
        check_open(self) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(items, "append_many() needs an iterable of bytes-like items");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    lock_appends(self);
    uint64_t first = rj_log_next_seq(self->log), s = first;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (append_one(self, PySequence_Fast_GET_ITEM(seq, i), &s) < 0) {
            PyThread_release_lock(self->appending);
            Py_DECREF(seq);
            return NULL;
        }
        if (i == 0)
            first = s;
    }
    PyThread_release_lock(self->appending);
    Py_DECREF(seq);
    if (n && (durable || self->sync_always) && wait_durable(self, s + 1) < 0)
        return NULL;
    /* The call's records are consecutive: first .. end - 1. */
    return Py_BuildValue("KK", (unsigned long long)first, (unsigned long long)(n ? s + 1 : first));
}

static PyObject *writer_flush(LogWriter *self, PyObject *Py_UNUSED(a))
{
    if (check_open(self) < 0 || wait_durable(self, rj_log_next_seq(self->log)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *writer_close(LogWriter *self, PyObject *Py_UNUSED(a))
{
    if (!self->log)
        Py_RETURN_NONE;
    if (self->busy) {
        rj_state *st = rj_state_from_type(Py_TYPE(self));
        return PyErr_Format(st->BusyError, "cannot close the log: %zd call(s) waiting on it",
                            self->busy);
    }
    rj_log *l = self->log;
    self->log = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rj_log_close(l);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&self->bufs[0]);
    PyBuffer_Release(&self->bufs[1]);
    self->have_bufs = 0;
    if (rc < 0)
        return raise_log(self, rc);
    Py_RETURN_NONE;
}

static PyObject *writer_stats(LogWriter *self, PyObject *Py_UNUSED(a))
{
    if (check_open(self) < 0)
        return NULL;
    rj_log_stats s;
    rj_log_get_stats(self->log, &s);
    static const char *syncs[] = {"none", "group", "always", "interval"};
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:O,s:s,s:s}", "appended",
        (unsigned long long)s.appended, "durable", (unsigned long long)s.committed, "written",
        (unsigned long long)s.written, "commits", (unsigned long long)s.commits, "syncs",
        (unsigned long long)s.syncs, "bytes_written", (unsigned long long)s.bytes_written,
        "segments_rolled", (unsigned long long)s.rolls, "segments_removed",
        (unsigned long long)s.removed, "max_batch", (unsigned long long)s.max_batch, "segment",
        (unsigned long long)s.segment, "segment_offset", (unsigned long long)s.segment_offset,
        "o_direct", s.direct ? Py_True : Py_False, "backend",
        s.backend == RJ_BACKEND_MMAP    ? "mmap"
        : s.backend == RJ_BACKEND_URING ? "io_uring"
                                        : "write",
        "sync", syncs[s.sync & 3]);
}

static PyObject *writer_recovery(LogWriter *self, PyObject *Py_UNUSED(a))
{
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:O}", "segment", (unsigned long long)self->rec.segment,
                         "offset", (unsigned long long)self->rec.offset, "torn_bytes",
                         (unsigned long long)self->rec.torn_bytes, "lost_records",
                         (unsigned long long)self->rec.lost_records, "corrupt_middle",
                         self->rec.corrupt_middle ? Py_True : Py_False);
}

static void writer_dealloc(LogWriter *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->log) {
        rj_log *l = self->log;
        self->log = NULL;
        Py_BEGIN_ALLOW_THREADS
        rj_log_close(l);
        Py_END_ALLOW_THREADS
    }
    if (self->have_bufs) {
        PyBuffer_Release(&self->bufs[0]);
        PyBuffer_Release(&self->bufs[1]);
    }
    if (self->appending)
        PyThread_free_lock(self->appending);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef writer_methods[] = {
    {"append", (PyCFunction)(void (*)(void))writer_append, METH_VARARGS | METH_KEYWORDS,
     "append(data, *, durable=False) -> seq"},
    {"append_many", (PyCFunction)(void (*)(void))writer_append_many,
     METH_VARARGS | METH_KEYWORDS, "append_many(items, *, durable=False) -> (first, end)"},
    {"flush", (PyCFunction)writer_flush, METH_NOARGS, "Wait until every append is durable."},
    {"close", (PyCFunction)writer_close, METH_NOARGS, "Flush, sync, stop the writer."},
    {"stats", (PyCFunction)writer_stats, METH_NOARGS, "Counters and settings."},
    {"recovery", (PyCFunction)writer_recovery, METH_NOARGS, "What opening found at the tail."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot writer_slots[] = {
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, writer_init},
    {Py_tp_dealloc, writer_dealloc},
    {Py_tp_methods, writer_methods},
    {Py_tp_doc, "LogWriter(dir, buffers, ...): see rulejet.Log."},
    {0, NULL},
};

static PyType_Spec writer_spec = {
    .name = "rulejet._native.LogWriter",
    .basicsize = sizeof(LogWriter),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = writer_slots,
};

/* ---- reading ---- */

/* log_scan(segment, offset, expect, max_records) -> (U64Array of
 * (seq, offset, length) triples, next offset, next seq, status): status 1
 * when max_records were read (more may follow), 0 at a clean end, -1 at
 * bytes that are not the expected record. */
static PyObject *log_scan(PyObject *module, PyObject *args)
{
    Py_buffer view;
    unsigned long long off, expect;
    Py_ssize_t max;
    if (!PyArg_ParseTuple(args, "y*KKn:log_scan", &view, &off, &expect, &max))
        return NULL;
    rj_state *st = rj_get_state(module);
    size_t cap = max < 1 ? 1 : max > (1 << 20) ? (size_t)1 << 20 : (size_t)max;
    uint64_t *out = malloc(cap * 3 * sizeof *out); /* rj_u64array_steal frees with free() */
    if (!out) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    size_t n = 0;
    int status = 0;
    uint64_t o = off, e = expect;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        if (n == cap) {
            status = 1;
            break;
        }
        const uint8_t *payload;
        uint32_t len;
        int r = rj_log_next(view.buf, (size_t)view.len, &o, e, &payload, &len);
        if (r <= 0) {
            status = r;
            break;
        }
        out[3 * n] = e++;
        out[3 * n + 1] = (uint64_t)(payload - (const uint8_t *)view.buf);
        out[3 * n + 2] = len;
        n++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *arr = rj_u64array_steal(st, out, n * 3);
    if (!arr)
        return NULL;
    return Py_BuildValue("NKKi", arr, (unsigned long long)o, (unsigned long long)e, status);
}

static PyObject *log_resync(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer view;
    unsigned long long off, min_seq;
    if (!PyArg_ParseTuple(args, "y*KK:log_resync", &view, &off, &min_seq))
        return NULL;
    uint64_t seq = 0, at;
    Py_BEGIN_ALLOW_THREADS
    at = rj_log_resync(view.buf, (size_t)view.len, off, min_seq, &seq);
    Py_END_ALLOW_THREADS
    Py_ssize_t size = view.len;
    PyBuffer_Release(&view);
    if (at >= (uint64_t)size)
        Py_RETURN_NONE;
    return Py_BuildValue("KK", (unsigned long long)at, (unsigned long long)seq);
}

static PyObject *log_zeros(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer view;
    unsigned long long off;
    if (!PyArg_ParseTuple(args, "y*K:log_zeros", &view, &off))
        return NULL;
    const uint8_t *p = view.buf;
    int zeros = 1;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = (size_t)off; i < (size_t)view.len; i++) {
        if (p[i]) {
            zeros = 0;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyBool_FromLong(zeros);
}

static PyObject *log_header(PyObject *module, PyObject *args)
{
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*:log_header", &view))
        return NULL;
    uint64_t first = 0, bytes = 0;
    const char *why = rj_log_check_header(view.buf, (size_t)view.len, &first, &bytes);
    PyBuffer_Release(&view);
    if (why) {
        rj_state *st = rj_get_state(module);
        PyErr_SetString(st->LogCorruptionError, why);
        return NULL;
    }
    return Py_BuildValue("KK", (unsigned long long)first, (unsigned long long)bytes);
}

static PyObject *crc32c(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer view;
    unsigned int crc = 0;
    int table = 0;
    if (!PyArg_ParseTuple(args, "y*|Ip:crc32c", &view, &crc, &table))
        return NULL;
    uint32_t c = table ? rj_crc32c_table(crc, view.buf, (size_t)view.len)
                       : rj_crc32c(crc, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(c);
}

PyMethodDef rj_log_methods[] = {
    {"log_scan", log_scan, METH_VARARGS,
     "log_scan(segment, offset, expect, max) -> (triples, offset, expect, status)"},
    {"log_resync", log_resync, METH_VARARGS,
     "log_resync(segment, offset, min_seq) -> (offset, seq) of the next valid record, or None"},
    {"log_zeros", log_zeros, METH_VARARGS, "log_zeros(segment, offset) -> all zero from there?"},
    {"log_header", log_header, METH_VARARGS, "log_header(segment) -> (first_seq, segment_bytes)"},
    {"crc32c", crc32c, METH_VARARGS, "crc32c(data, crc=0, table=False) -> CRC-32C"},
    {NULL, NULL, 0, NULL},
};

int rj_log_init_type(PyObject *module, rj_state *st)
{
    st->LogWriterType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &writer_spec, NULL);
    if (!st->LogWriterType)
        return -1;
    return PyModule_AddType(module, st->LogWriterType);
}
