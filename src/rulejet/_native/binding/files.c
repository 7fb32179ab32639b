/* files.c (binding): open_beneath for the file server (core/beneath.h). */
#include <errno.h>

#include "../core/beneath.h"
#include "module.h"

/* open_beneath(dirfd, path) -> fd; FileError (EXDEV when the path would
 * leave the directory, ENOSYS without openat2, ENOENT, ...). */
static PyObject *open_beneath(PyObject *module, PyObject *args)
{
    int dirfd;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "iO&:open_beneath", &dirfd, PyUnicode_FSConverter, &path))
        return NULL;
    int fd = rj_open_beneath(dirfd, PyBytes_AS_STRING(path));
    if (fd < 0) {
        rj_raise_errno(rj_get_state(module), fd, path);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    return PyLong_FromLong(fd);
}

PyMethodDef rj_files_methods[] = {
    {"open_beneath", open_beneath, METH_VARARGS,
     "open_beneath(dirfd, path) -> fd, read-only; the path may not leave dirfd (openat2)"},
    {NULL, NULL, 0, NULL},
};
