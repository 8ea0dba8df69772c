/* SPDX-License-Identifier: MIT */
/* Python callables as pt_fn callbacks (pymod.h).  The library calls them on the thread of the
   computing call (no PT_CALLBACK_THREAD_SAFE), which released the GIL: each call takes it back
   for as long as Python runs. */
#include "pymod.h"

#include <string.h>

typedef struct callback {
  PyObject *fun, *vjp; /* vjp NULL: a black box */
  size_t n_in, n_out;
} callback;

/* A read-only float32 array over the library's floats (no copy), of 1 or 2 axes. */
static PyObject *view(const float *p, int nd, npy_intp rows, npy_intp cols) {
  npy_intp dims[2] = {rows, cols};
  PyObject *a = nd == 1 ? PyArray_SimpleNewFromData(1, &dims[1], NPY_FLOAT32, (void *)p)
                        : PyArray_SimpleNewFromData(2, dims, NPY_FLOAT32, (void *)p);
  if (a) PyArray_CLEARFLAGS((PyArrayObject *)a, NPY_ARRAY_WRITEABLE);
  return a;
}

/* result's numbers (n of them, any shape) into out; 0, or -1 with an exception. */
static int copy_result(PyObject *result, size_t n, float *out, const char *what) {
  PyArrayObject *a = pt_py_floats(result, what);
  if (!a) return -1;
  if ((size_t)PyArray_SIZE(a) != n) {
    PyErr_Format(PyExc_ValueError, "%s returned %zd numbers where %zu were expected", what,
                 (Py_ssize_t)PyArray_SIZE(a), n);
    Py_DECREF(a);
    return -1;
  }
  memcpy(out, PyArray_DATA(a), n * sizeof *out);
  Py_DECREF(a);
  return 0;
}

static int eval_trampoline(void *user, size_t batch, const float *x, float *y) {
  const callback *c = user;
  PyGILState_STATE g = PyGILState_Ensure();
  PyObject *xa = view(x, 2, (npy_intp)batch, (npy_intp)c->n_in);
  PyObject *r = xa ? PyObject_CallOneArg(c->fun, xa) : NULL;
  const int rc = r ? copy_result(r, batch * c->n_out, y, "the function") : -1;
  Py_XDECREF(r);
  Py_XDECREF(xa);
  if (rc) pt_py_keep_exception();
  PyGILState_Release(g);
  return rc ? 1 : 0;
}

static int vjp_trampoline(void *user, const float *x, const float *y_bar, float *x_bar) {
  const callback *c = user;
  PyGILState_STATE g = PyGILState_Ensure();
  PyObject *xa = view(x, 1, 1, (npy_intp)c->n_in), *ya = view(y_bar, 1, 1, (npy_intp)c->n_out);
  PyObject *r = xa && ya ? PyObject_CallFunctionObjArgs(c->vjp, xa, ya, NULL) : NULL;
  const int rc = r ? copy_result(r, c->n_in, x_bar, "the vjp") : -1;
  Py_XDECREF(r);
  Py_XDECREF(xa);
  Py_XDECREF(ya);
  if (rc) pt_py_keep_exception();
  PyGILState_Release(g);
  return rc ? 1 : 0;
}

/* Called once when the pt_fn is destroyed, maybe without the GIL. */
static void release(void *user) {
  callback *c = user;
  PyGILState_STATE g = PyGILState_Ensure();
  Py_DECREF(c->fun);
  Py_XDECREF(c->vjp);
  PyGILState_Release(g);
  PyMem_RawFree(c);
}

pt_status pt_py_callback_fn(size_t n_in, size_t n_out, PyObject *fun, PyObject *vjp,
                            pt_fn **out) {
  callback *c = PyMem_RawMalloc(sizeof *c);
  if (!c) {
    PyErr_NoMemory();
    return PT_ENOMEM;
  }
  *c = (callback){fun, vjp, n_in, n_out};
  const pt_status s = pt_fn_from_callback_ex(n_in, n_out, eval_trampoline,
                                             vjp ? vjp_trampoline : NULL, c, release, 0, out);
  if (s != PT_OK) {
    PyMem_RawFree(c);
    return s;
  }
  Py_INCREF(fun);
  Py_XINCREF(vjp);
  return PT_OK;
}
