/* mapping.c: Mapping, the native half of rulejet.MappedFile.
 *
 * Invariant: the map is unmapped only when no buffer export is live.
 * Every memoryview over the map (and every slice, numpy array or
 * PyObject_GetBuffer pin derived from one) holds an export, counted in
 * `exports` by getbuffer/releasebuffer; close() refuses with BusyError
 * while it is non-zero, the way CPython's mmap refuses. Both run with the
 * GIL held, so the count needs no atomics. After close, getbuffer raises
 * ClosedError, so no new view can ever see an unmapped address.
 * Lease counting and waiting live in Python (rulejet/mapped.py).
 */
#include "module.h"
#include "../core/mapped.h"

typedef struct {
    PyObject_HEAD
    rj_map map;
    Py_ssize_t exports;
    int closed;
    PyObject *path;
} Mapping;

static int mapping_init(Mapping *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"path", "write", "populate", "size", NULL};
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    PyObject *path_obj, *bytes_path;
    int write = 0, populate = 0;
    unsigned long long size = 0;
    if (self->map.base || self->path) {
        PyErr_SetString(PyExc_RuntimeError, "Mapping already initialized");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$ppK:Mapping", names, &path_obj,
                                     &write, &populate, &size))
        return -1;
    if (!PyUnicode_FSConverter(path_obj, &bytes_path))
        return -1;
    int flags = (write ? RJ_MAP_WRITE : 0) | (populate ? RJ_MAP_POPULATE : 0);
    int rc;
    /* Opening with MAP_POPULATE reads the whole file: release the GIL. */
    Py_BEGIN_ALLOW_THREADS
    rc = rj_map_open(PyBytes_AS_STRING(bytes_path), flags, size, &self->map);
    Py_END_ALLOW_THREADS
    Py_DECREF(bytes_path);
    if (rc < 0) {
        rj_raise_errno(st, rc, path_obj);
        return -1;
    }
    self->path = Py_NewRef(path_obj);
    return 0;
}

static void mapping_dealloc(Mapping *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    /* No export can be live here: each one holds a reference to self. */
    rj_map_close(&self->map);
    Py_CLEAR(self->path);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int check_open(Mapping *self)
{
    if (self->closed || (!self->map.base && !self->path)) {
        rj_state *st = rj_state_from_type(Py_TYPE(self));
        PyErr_Format(st->ClosedError, "memory map of %R is closed", self->path);
        return -1;
    }
    return 0;
}

static int mapping_getbuffer(Mapping *self, Py_buffer *view, int flags)
{
    static char empty[1];
    if (check_open(self) < 0)
        return -1;
    if ((flags & PyBUF_WRITABLE) && !self->map.writable) {
        PyErr_SetString(PyExc_BufferError, "memory map is read-only");
        return -1;
    }
    void *buf = self->map.base ? (void *)self->map.base : (void *)empty;
    if (PyBuffer_FillInfo(view, (PyObject *)self, buf, (Py_ssize_t)self->map.size,
                          !self->map.writable, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void mapping_releasebuffer(Mapping *self, Py_buffer *Py_UNUSED(view))
{
    self->exports--;
}

static PyObject *mapping_close(Mapping *self, PyObject *Py_UNUSED(a))
{
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    if (self->closed)
        Py_RETURN_NONE;
    if (self->exports > 0)
        return PyErr_Format(st->BusyError,
                            "cannot close memory map of %R: %zd buffer view(s) "
                            "still exported", self->path, self->exports);
    int rc = rj_map_close(&self->map);
    self->closed = 1;
    if (rc < 0)
        return rj_raise_errno(st, rc, self->path);
    Py_RETURN_NONE;
}

static PyObject *mapping_advise(Mapping *self, PyObject *args)
{
    int advice;
    Py_ssize_t offset = 0, length = 0;
    if (!PyArg_ParseTuple(args, "i|nn:advise", &advice, &offset, &length))
        return NULL;
    if (check_open(self) < 0)
        return NULL;
    if (offset < 0 || length < 0) {
        PyErr_SetString(PyExc_ValueError, "offset and length must be >= 0");
        return NULL;
    }
    int rc = rj_map_advise(&self->map, advice, (size_t)offset, (size_t)length);
    if (rc < 0)
        return rj_raise_errno(rj_state_from_type(Py_TYPE(self)), rc, self->path);
    Py_RETURN_NONE;
}

static PyObject *mapping_sync(Mapping *self, PyObject *Py_UNUSED(a))
{
    if (check_open(self) < 0)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rj_map_sync(&self->map);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return rj_raise_errno(rj_state_from_type(Py_TYPE(self)), rc, self->path);
    Py_RETURN_NONE;
}

static PyObject *get_size(Mapping *self, void *Py_UNUSED(c))
{
    return PyLong_FromSize_t(self->map.size);
}
static PyObject *get_closed(Mapping *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->closed);
}
static PyObject *get_exports(Mapping *self, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(self->exports);
}
static PyObject *get_writable(Mapping *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->map.writable);
}
static PyObject *get_path(Mapping *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->path ? self->path : Py_None);
}

static PyGetSetDef mapping_getset[] = {
    {"size", (getter)get_size, NULL, "Mapped size in bytes.", NULL},
    {"closed", (getter)get_closed, NULL, "True after close().", NULL},
    {"exports", (getter)get_exports, NULL, "Live buffer exports.", NULL},
    {"writable", (getter)get_writable, NULL, "True if mapped read-write.", NULL},
    {"path", (getter)get_path, NULL, "The path given at open.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef mapping_methods[] = {
    {"close", (PyCFunction)mapping_close, METH_NOARGS,
     "Unmap; BusyError while buffer views are exported."},
    {"advise", (PyCFunction)mapping_advise, METH_VARARGS,
     "advise(advice, offset=0, length=0): madvise a range."},
    {"sync", (PyCFunction)mapping_sync, METH_NOARGS, "msync(MS_SYNC) a writable map."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot mapping_slots[] = {
    {Py_tp_init, mapping_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, mapping_dealloc},
    {Py_tp_methods, mapping_methods},
    {Py_tp_getset, mapping_getset},
    {Py_bf_getbuffer, mapping_getbuffer},
    {Py_bf_releasebuffer, mapping_releasebuffer},
    {Py_tp_doc, "Mapping(path, *, write=False, populate=False, size=0): a whole-file "
                "memory map that refuses to close while views are exported."},
    {0, NULL},
};

static PyType_Spec mapping_spec = {
    .name = "rulejet._native.Mapping",
    .basicsize = sizeof(Mapping),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = mapping_slots,
};

int rj_mapping_init_type(PyObject *module, rj_state *st)
{
    st->MappingType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &mapping_spec, NULL);
    if (!st->MappingType)
        return -1;
    return PyModule_AddType(module, st->MappingType);
}
