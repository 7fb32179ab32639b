/* lines.c (binding): line_starts(buffer, base=0, at_start=True,
 * at_end=True, kernel=None) -> U64Array. Parses, pins the buffer, runs
 * core rj_line_starts with the GIL released for large inputs. */
#include "module.h"
#include "../core/dispatch.h"
#include "../core/lines.h"

static PyObject *rj_py_line_starts(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *names[] = {"buffer", "base", "at_start", "at_end", "kernel", NULL};
    rj_state *st = rj_get_state(module);
    Py_buffer buf;
    unsigned long long base = 0;
    int at_start = 1, at_end = 1;
    const char *kname = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|$Kppz:line_starts", names, &buf,
                                     &base, &at_start, &at_end, &kname))
        return NULL;
    const rj_kernel *k = kname ? rj_kernel_arg(st, kname) : rj_kernel_active();
    if (!k) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    rj_u64vec out = {0};
    int rc;
    if (buf.len > RJ_GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        rc = rj_line_starts(k, buf.buf, (size_t)buf.len, base, at_start, at_end, &out);
        Py_END_ALLOW_THREADS
    } else {
        rc = rj_line_starts(k, buf.buf, (size_t)buf.len, base, at_start, at_end, &out);
    }
    PyBuffer_Release(&buf);
    if (rc < 0) {
        rj_u64vec_free(&out);
        return rj_raise_errno(st, rc, NULL);
    }
    return rj_u64array_steal(st, out.data, out.len);
}

PyMethodDef rj_lines_methods[] = {
    {"line_starts", (PyCFunction)(void (*)(void))rj_py_line_starts,
     METH_VARARGS | METH_KEYWORDS,
     "line_starts(buffer, *, base=0, at_start=True, at_end=True, kernel=None)\n"
     "Start offsets (plus base) of the lines in a bytes-like buffer."},
    {NULL, NULL, 0, NULL},
};
