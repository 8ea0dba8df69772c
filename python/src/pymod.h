/* SPDX-License-Identifier: MIT */
/* _perturb, the C layer of the Python package `perturb`: the public C API as Python objects
   (keys, functions) taking and returning numpy float32 arrays.  The package's __init__.py
   builds the optax-like interface (pytrees, shapes, noise classes) on top of it.

   The GIL is released during every computing call.  Python callbacks are registered without
   PT_CALLBACK_THREAD_SAFE, so the library calls them only on the thread that made the call,
   which takes the GIL back for them; an exception a callback raises is kept for that thread
   and raised again, itself, when the call returns. */
#ifndef PT_PYMOD_H
#define PT_PYMOD_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL pt_py_numpy_api
#ifndef PT_PY_IMPORTS_NUMPY /* module.c imports numpy's C API; the other files use it */
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "perturb.h"

/* perturb.Key: an immutable pt_key. */
typedef struct pt_py_key {
  PyObject_HEAD
  pt_key key;
} pt_py_key;
extern PyTypeObject pt_py_key_type;
PyObject *pt_py_key_new(pt_key key);
/* A converter for PyArg_Parse's "O&": a perturb.Key into a pt_key. */
int pt_py_key_arg(PyObject *o, void *key);
PyObject *pt_py_prng_key(PyObject *self, PyObject *args);
PyObject *pt_py_split(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *pt_py_fold_in(PyObject *self, PyObject *args);

/* perturb.Fn: one pt_fn, freed with the object. */
typedef struct pt_py_fn {
  PyObject_HEAD
  pt_fn *fn;
} pt_py_fn;
extern PyTypeObject pt_py_fn_type;
/* A new Fn owning fn (freed if the object cannot be made); NULL with an exception. */
PyObject *pt_py_fn_wrap(pt_fn *fn);
/* "O&" converter: a perturb.Fn into its const pt_fn *. */
int pt_py_fn_arg(PyObject *o, void *fn);
extern PyMethodDef pt_py_fn_constructors[];

/* A pt_fn whose value (and, when vjp is not None, VJP) are the Python callables': fun(x) with
   x a read-only (batch, n_in) float32 array returns batch x n_out numbers; vjp(x, y_bar) with
   x (n_in,) and y_bar (n_out,) returns n_in numbers.  The function holds references to both. */
pt_status pt_py_callback_fn(size_t n_in, size_t n_out, PyObject *fun, PyObject *vjp,
                            pt_fn **out);

/* With the GIL, inside a callback: keeps the current exception for the thread's running call
   (the first one; later ones are dropped, as the call stops at the first failure). */
void pt_py_keep_exception(void);
/* After a failed call: raises the kept exception if a callback left one, else the exception
   of status s with pt_last_error()'s sentence: ValueError (PT_EINVAL), MemoryError,
   OverflowError, NotImplementedError (PT_EUNSUPPORTED), perturb.CancelledError
   (PT_ECANCELED), perturb.CallbackError (PT_ECALLBACK).  Returns NULL. */
PyObject *pt_py_fail(pt_status s);
/* Drops a kept exception before a call (one left by a call that then succeeded cannot be). */
void pt_py_forget_exception(void);
extern PyObject *pt_py_cancelled_error, *pt_py_callback_error;

/* x as a C-contiguous float32 array (a new reference: the same array when it already is one,
   else a converted copy), refusing arrays of complex, object, string or other non-real kinds
   with TypeError.  NULL with an exception. */
PyArrayObject *pt_py_floats(PyObject *x, const char *name);

#endif
