/* SPDX-License-Identifier: MIT */
/* The module: its errors, keys, array conversion and initialisation (pymod.h). */
#define PT_PY_IMPORTS_NUMPY
#include "pymod.h"

#include <string.h>

PyObject *pt_py_cancelled_error, *pt_py_callback_error;

/* ---- errors ---------------------------------------------------------------------------------- */

/* The exception a callback raised during the thread's running call (type, value, traceback),
   kept with the GIL held. */
static _Thread_local PyObject *kept_type, *kept_value, *kept_traceback;

void pt_py_keep_exception(void) {
  if (kept_type) { /* the call stops at the first failure: this one is a consequence */
    PyErr_Clear();
    return;
  }
  PyErr_Fetch(&kept_type, &kept_value, &kept_traceback);
  PyErr_NormalizeException(&kept_type, &kept_value, &kept_traceback);
  if (kept_traceback) PyException_SetTraceback(kept_value, kept_traceback);
}

void pt_py_forget_exception(void) {
  Py_CLEAR(kept_type);
  Py_CLEAR(kept_value);
  Py_CLEAR(kept_traceback);
}

PyObject *pt_py_fail(pt_status s) {
  if (kept_type) {
    PyErr_Restore(kept_type, kept_value, kept_traceback);
    kept_type = kept_value = kept_traceback = NULL;
    return NULL;
  }
  PyObject *type = s == PT_EINVAL          ? PyExc_ValueError
                   : s == PT_ENOMEM        ? PyExc_MemoryError
                   : s == PT_EOVERFLOW     ? PyExc_OverflowError
                   : s == PT_EUNSUPPORTED  ? PyExc_NotImplementedError
                   : s == PT_ECANCELED     ? pt_py_cancelled_error
                   : s == PT_ECALLBACK     ? pt_py_callback_error
                                           : PyExc_RuntimeError;
  const char *why = pt_last_error();
  PyErr_SetString(type, why[0] ? why : pt_strerror(s));
  return NULL;
}

/* ---- arrays ---------------------------------------------------------------------------------- */

PyArrayObject *pt_py_floats(PyObject *x, const char *name) {
  if (PyArray_Check(x)) {
    const char kind = PyArray_DESCR((PyArrayObject *)x)->kind;
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') {
      PyErr_Format(PyExc_TypeError, "%s: an array of real numbers is needed, not dtype %R", name,
                   (PyObject *)PyArray_DESCR((PyArrayObject *)x));
      return NULL;
    }
  } else if (PyComplex_Check(x)) {
    PyErr_Format(PyExc_TypeError, "%s: complex numbers are not real", name);
    return NULL;
  }
  PyObject *a = PyArray_FromAny(x, PyArray_DescrFromType(NPY_FLOAT32), 0, 0,
                                NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST, NULL);
  if (a && PyArray_DESCR((PyArrayObject *)a)->type_num != NPY_FLOAT32) { /* cannot happen */
    Py_DECREF(a);
    PyErr_Format(PyExc_TypeError, "%s: not convertible to float32", name);
    return NULL;
  }
  return (PyArrayObject *)a;
}

/* ---- keys ------------------------------------------------------------------------------------ */

PyObject *pt_py_key_new(pt_key key) {
  pt_py_key *k = PyObject_New(pt_py_key, &pt_py_key_type);
  if (k) k->key = key;
  return (PyObject *)k;
}

int pt_py_key_arg(PyObject *o, void *key) {
  if (!PyObject_TypeCheck(o, &pt_py_key_type)) {
    PyErr_Format(PyExc_TypeError, "a perturb.Key is needed (perturb.PRNGKey(seed)), not %.100s",
                 Py_TYPE(o)->tp_name);
    return 0;
  }
  *(pt_key *)key = ((pt_py_key *)o)->key;
  return 1;
}

static PyObject *key_repr(PyObject *self) {
  const pt_key k = ((pt_py_key *)self)->key;
  char text[64];
  snprintf(text, sizeof text, "Key(seed=0x%016llx, stream=0x%016llx)", (unsigned long long)k.seed,
           (unsigned long long)k.stream);
  return PyUnicode_FromString(text);
}

static PyObject *key_richcompare(PyObject *a, PyObject *b, int op) {
  if ((op != Py_EQ && op != Py_NE) || !PyObject_TypeCheck(b, &pt_py_key_type))
    Py_RETURN_NOTIMPLEMENTED;
  const pt_key x = ((pt_py_key *)a)->key, y = ((pt_py_key *)b)->key;
  const int same = x.seed == y.seed && x.stream == y.stream;
  return PyBool_FromLong(op == Py_EQ ? same : !same);
}

static Py_hash_t key_hash(PyObject *self) {
  const pt_key k = ((pt_py_key *)self)->key;
  Py_hash_t h = (Py_hash_t)(k.seed ^ (k.stream * 0x9E3779B97F4A7C15ull));
  return h == -1 ? -2 : h;
}

static PyObject *key_seed(PyObject *self, void *unused) {
  (void)unused;
  return PyLong_FromUnsignedLongLong(((pt_py_key *)self)->key.seed);
}

static PyObject *key_stream(PyObject *self, void *unused) {
  (void)unused;
  return PyLong_FromUnsignedLongLong(((pt_py_key *)self)->key.stream);
}

static PyGetSetDef key_getset[] = {
    {"seed", key_seed, NULL, "the key's 64-bit seed (Philox's key words)", NULL},
    {"stream", key_stream, NULL, "the key's 64-bit stream (Philox's counter high words)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pt_py_key_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perturb.Key",
    .tp_basicsize = sizeof(pt_py_key),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A key of libperturb's random streams: make one with PRNGKey(seed), derive "
              "others with split and fold_in.",
    .tp_repr = key_repr,
    .tp_richcompare = key_richcompare,
    .tp_hash = key_hash,
    .tp_getset = key_getset,
};

/* A Python int in [0, 2^64) as a uint64_t; 0 with OverflowError or TypeError otherwise. */
static int u64_arg(PyObject *o, void *out) {
  if (!PyLong_Check(o)) {
    PyErr_Format(PyExc_TypeError, "an integer is needed, not %.100s", Py_TYPE(o)->tp_name);
    return 0;
  }
  const unsigned long long v = PyLong_AsUnsignedLongLong(o);
  if (v == (unsigned long long)-1 && PyErr_Occurred()) {
    PyErr_SetString(PyExc_OverflowError, "an integer from 0 to 2**64 - 1 is needed");
    return 0;
  }
  *(uint64_t *)out = v;
  return 1;
}

PyObject *pt_py_prng_key(PyObject *self, PyObject *args) {
  (void)self;
  uint64_t seed;
  if (!PyArg_ParseTuple(args, "O&:PRNGKey", u64_arg, &seed)) return NULL;
  return pt_py_key_new(pt_key_make(seed));
}

PyObject *pt_py_split(PyObject *self, PyObject *args, PyObject *kwargs) {
  (void)self;
  static char *names[] = {"key", "num", NULL};
  pt_key key;
  Py_ssize_t num = 2;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|n:split", names, pt_py_key_arg, &key, &num))
    return NULL;
  if (num < 0) {
    PyErr_SetString(PyExc_ValueError, "split: num must be at least 0");
    return NULL;
  }
  pt_key *keys = PyMem_Malloc((size_t)(num ? num : 1) * sizeof *keys);
  if (!keys) return PyErr_NoMemory();
  pt_key_split(key, keys, (size_t)num);
  PyObject *out = PyTuple_New(num);
  for (Py_ssize_t i = 0; out && i < num; i++) {
    PyObject *k = pt_py_key_new(keys[i]);
    if (!k) Py_CLEAR(out);
    else PyTuple_SET_ITEM(out, i, k);
  }
  PyMem_Free(keys);
  return out;
}

PyObject *pt_py_fold_in(PyObject *self, PyObject *args) {
  (void)self;
  pt_key key;
  uint64_t data;
  if (!PyArg_ParseTuple(args, "O&O&:fold_in", pt_py_key_arg, &key, u64_arg, &data)) return NULL;
  return pt_py_key_new(pt_key_fold_in(key, data));
}

static PyObject *noise(PyObject *self, PyObject *args, PyObject *kwargs) {
  (void)self;
  static char *names[] = {"kind", "key", "n", "offset", NULL};
  static const char *const kinds[] = {"gumbel", "normal", "uniform"};
  const char *kind;
  pt_key key;
  Py_ssize_t n;
  uint64_t offset = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO&n|O&:noise", names, &kind, pt_py_key_arg,
                                   &key, &n, u64_arg, &offset))
    return NULL;
  int k = 0;
  while (k < 3 && strcmp(kind, kinds[k]) != 0) k++;
  if (k == 3 || n < 0) {
    PyErr_SetString(PyExc_ValueError, k == 3 ? "noise: kind is 'gumbel', 'normal' or 'uniform'"
                                             : "noise: n must be at least 0");
    return NULL;
  }
  const npy_intp dims = (npy_intp)n;
  PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &dims, NPY_FLOAT32);
  if (!out) return NULL;
  pt_status s;
  Py_BEGIN_ALLOW_THREADS
  s = pt_noise_fill((pt_noise)k, key, offset, (float *)PyArray_DATA(out), (size_t)n);
  Py_END_ALLOW_THREADS
  if (s != PT_OK) {
    Py_DECREF(out);
    return pt_py_fail(s);
  }
  return (PyObject *)out;
}

/* ---- the module ------------------------------------------------------------------------------ */

static PyObject *set_num_threads(PyObject *self, PyObject *args) {
  (void)self;
  Py_ssize_t n;
  if (!PyArg_ParseTuple(args, "n:set_num_threads", &n)) return NULL;
  if (n < 1) {
    PyErr_SetString(PyExc_ValueError, "set_num_threads: a count from 1 to 1024 is needed");
    return NULL;
  }
  const pt_status s = pt_set_num_threads((size_t)n);
  if (s != PT_OK) return pt_py_fail(s);
  Py_RETURN_NONE;
}

static PyObject *get_num_threads(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyLong_FromSize_t(pt_get_num_threads());
}

static PyObject *isa_active(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyUnicode_FromString(pt_isa_name(pt_isa_active()));
}

static PyMethodDef module_methods[] = {
    {"PRNGKey", pt_py_prng_key, METH_VARARGS, "PRNGKey(seed) -> Key: pt_key_make(seed)."},
    {"split", (PyCFunction)(void (*)(void))pt_py_split, METH_VARARGS | METH_KEYWORDS,
     "split(key, num=2) -> tuple of num Keys: pt_key_split."},
    {"fold_in", pt_py_fold_in, METH_VARARGS, "fold_in(key, data) -> Key: pt_key_fold_in."},
    {"noise", (PyCFunction)(void (*)(void))noise, METH_VARARGS | METH_KEYWORDS,
     "noise(kind, key, n, offset=0) -> float32 array: pt_noise_fill of 'gumbel', 'normal' or "
     "'uniform' words offset .. offset + n - 1."},
    {"set_num_threads", set_num_threads, METH_VARARGS,
     "set_num_threads(n): the library's thread count (pt_set_num_threads)."},
    {"get_num_threads", get_num_threads, METH_NOARGS,
     "get_num_threads() -> int: the library's thread count."},
    {"isa_active", isa_active, METH_NOARGS,
     "isa_active() -> str: the ISA whose kernels computing calls use."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "perturb._perturb",
    .m_doc = "The C layer of perturb: libperturb's keys and functions on numpy arrays.",
    .m_size = -1, .m_methods = module_methods};

static int add_functions(PyObject *m, PyMethodDef *defs) {
  for (PyMethodDef *d = defs; d->ml_name; d++) {
    PyObject *f = PyCFunction_NewEx(d, NULL, NULL);
    if (!f || PyModule_AddObject(m, d->ml_name, f) < 0) {
      Py_XDECREF(f);
      return -1;
    }
  }
  return 0;
}

PyMODINIT_FUNC PyInit__perturb(void) {
  import_array();
  if (PyType_Ready(&pt_py_key_type) < 0 || PyType_Ready(&pt_py_fn_type) < 0) return NULL;
  PyObject *m = PyModule_Create(&module);
  if (!m) return NULL;
  pt_py_cancelled_error = PyErr_NewExceptionWithDoc(
      "perturb.CancelledError", "A progress handler cancelled the call (PT_ECANCELED).", NULL,
      NULL);
  pt_py_callback_error = PyErr_NewExceptionWithDoc(
      "perturb.CallbackError", "A C callback failed (PT_ECALLBACK) without a Python exception.",
      NULL, NULL);
  Py_INCREF(&pt_py_key_type);
  Py_INCREF(&pt_py_fn_type);
  if (!pt_py_cancelled_error || !pt_py_callback_error ||
      PyModule_AddObject(m, "CancelledError", pt_py_cancelled_error) < 0 ||
      PyModule_AddObject(m, "CallbackError", pt_py_callback_error) < 0 ||
      PyModule_AddObject(m, "Key", (PyObject *)&pt_py_key_type) < 0 ||
      PyModule_AddObject(m, "Fn", (PyObject *)&pt_py_fn_type) < 0 ||
      PyModule_AddStringConstant(m, "__version__", pt_version()) < 0 ||
      add_functions(m, pt_py_fn_constructors) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
