/* SPDX-License-Identifier: MIT */
/* perturb.Fn: a pt_fn, its constructors and its computing calls on float32 arrays (pymod.h).
   An input's last axis is the function's n_in; leading axes are a batch whose row b uses
   fold_in(key, b), as the C API's batched calls define it. */
#include "pymod.h"

#include <string.h>

/* ---- the type -------------------------------------------------------------------------------- */

PyObject *pt_py_fn_wrap(pt_fn *fn) {
  pt_py_fn *o = PyObject_New(pt_py_fn, &pt_py_fn_type);
  if (!o) {
    pt_fn_free(fn);
    return NULL;
  }
  o->fn = fn;
  return (PyObject *)o;
}

int pt_py_fn_arg(PyObject *o, void *fn) {
  if (!PyObject_TypeCheck(o, &pt_py_fn_type)) {
    PyErr_Format(PyExc_TypeError, "a perturb.Fn is needed, not %.100s", Py_TYPE(o)->tp_name);
    return 0;
  }
  *(const pt_fn **)fn = ((pt_py_fn *)o)->fn;
  return 1;
}

static void fn_dealloc(PyObject *self) {
  pt_fn_free(((pt_py_fn *)self)->fn); /* may drop a callback's references: the GIL is held */
  PyObject_Free(self);
}

static PyObject *fn_n_in(PyObject *self, void *unused) {
  (void)unused;
  return PyLong_FromSize_t(pt_fn_n_in(((pt_py_fn *)self)->fn));
}

static PyObject *fn_n_out(PyObject *self, void *unused) {
  (void)unused;
  return PyLong_FromSize_t(pt_fn_n_out(((pt_py_fn *)self)->fn));
}

static PyObject *fn_repr(PyObject *self) {
  const pt_fn *f = ((pt_py_fn *)self)->fn;
  return PyUnicode_FromFormat("Fn(n_in=%zu, n_out=%zu)", pt_fn_n_in(f), pt_fn_n_out(f));
}

/* ---- arguments ------------------------------------------------------------------------------- */

/* An input of the call: its float32 array and, when its last axis has n entries, the batch
   (the product of the other axes; 0 for a 1-D input, which is one call).  NULL with an
   exception otherwise. */
static PyArrayObject *input(PyObject *o, size_t n, const char *what, size_t *batch) {
  PyArrayObject *a = pt_py_floats(o, what);
  if (!a) return NULL;
  const int nd = PyArray_NDIM(a);
  if (nd == 0 || (size_t)PyArray_DIM(a, nd - 1) != n) {
    PyErr_Format(PyExc_ValueError, "%s: the last axis must have %zu entries, not %zd", what, n,
                 nd == 0 ? (Py_ssize_t)0 : (Py_ssize_t)PyArray_DIM(a, nd - 1));
    Py_DECREF(a);
    return NULL;
  }
  *batch = nd == 1 ? 0 : (size_t)(PyArray_SIZE(a) / (npy_intp)n);
  return a;
}

/* 1 when b has a's leading axes (all but the last of each), else 0 with ValueError. */
static int same_batch(PyArrayObject *a, PyArrayObject *b, const char *what) {
  const int nd = PyArray_NDIM(a);
  int same = nd == PyArray_NDIM(b);
  for (int i = 0; same && i + 1 < nd; i++) same = PyArray_DIM(a, i) == PyArray_DIM(b, i);
  if (!same)
    PyErr_Format(PyExc_ValueError, "%s: its leading axes must be x's", what);
  return same;
}

/* A new float32 array of a's leading axes followed by `tail` (count of them). */
static PyArrayObject *output(PyArrayObject *a, const npy_intp *tail, int count) {
  npy_intp dims[NPY_MAXDIMS];
  const int lead = PyArray_NDIM(a) - 1;
  if (lead + count > NPY_MAXDIMS) {
    PyErr_SetString(PyExc_ValueError, "too many axes");
    return NULL;
  }
  for (int i = 0; i < lead; i++) dims[i] = PyArray_DIM(a, i);
  for (int i = 0; i < count; i++) dims[lead + i] = tail[i];
  return (PyArrayObject *)PyArray_SimpleNew(lead + count, dims, NPY_FLOAT32);
}

static float *floats_of(PyArrayObject *a) { return (float *)PyArray_DATA(a); }

/* The end of a computing call: out, or NULL with the call's exception (out released). */
static PyObject *finish(pt_status s, PyArrayObject *out) {
  if (s == PT_OK) return (PyObject *)out;
  Py_XDECREF(out);
  return pt_py_fail(s);
}

/* ---- computing calls ------------------------------------------------------------------------- */

static PyObject *fn_eval(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *names[] = {"key", "x", NULL};
  const pt_fn *f = ((pt_py_fn *)self)->fn;
  pt_key key;
  PyObject *xo;
  size_t batch;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O:eval", names, pt_py_key_arg, &key, &xo))
    return NULL;
  PyArrayObject *x = input(xo, pt_fn_n_in(f), "x", &batch);
  if (!x) return NULL;
  const npy_intp tail = (npy_intp)pt_fn_n_out(f);
  PyArrayObject *y = output(x, &tail, 1);
  pt_status s = PT_EINVAL;
  if (y) {
    pt_py_forget_exception();
    Py_BEGIN_ALLOW_THREADS
    s = PyArray_NDIM(x) == 1 ? pt_fn_eval(f, key, floats_of(x), floats_of(y))
                             : pt_fn_eval_batch(f, key, batch, floats_of(x), floats_of(y));
    Py_END_ALLOW_THREADS
  }
  Py_DECREF(x);
  return y ? finish(s, y) : NULL;
}

/* vjp (x_bar = J^T y_bar) and jvp (y_dot = J x_dot): x and a vector v of the same batch. */
static PyObject *product(PyObject *self, PyObject *args, PyObject *kwargs, int vjp) {
  static char *vjp_names[] = {"key", "x", "y_bar", NULL}, *jvp_names[] = {"key", "x", "x_dot", NULL};
  const pt_fn *f = ((pt_py_fn *)self)->fn;
  const size_t n_in = pt_fn_n_in(f), n_out = pt_fn_n_out(f);
  pt_key key;
  PyObject *xo, *vo;
  size_t batch, vbatch;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, vjp ? "O&OO:vjp" : "O&OO:jvp",
                                   vjp ? vjp_names : jvp_names, pt_py_key_arg, &key, &xo, &vo))
    return NULL;
  PyArrayObject *x = input(xo, n_in, "x", &batch);
  if (!x) return NULL;
  PyArrayObject *v = input(vo, vjp ? n_out : n_in, vjp ? "y_bar" : "x_dot", &vbatch);
  if (!v || !same_batch(x, v, vjp ? "y_bar" : "x_dot")) {
    Py_DECREF(x);
    Py_XDECREF(v);
    return NULL;
  }
  const npy_intp tail = (npy_intp)(vjp ? n_in : n_out);
  PyArrayObject *out = output(x, &tail, 1);
  pt_status s = PT_EINVAL;
  if (out) {
    const float *xp = floats_of(x), *vp = floats_of(v);
    float *op = floats_of(out);
    const int one = PyArray_NDIM(x) == 1;
    pt_py_forget_exception();
    Py_BEGIN_ALLOW_THREADS
    if (vjp)
      s = one ? pt_fn_vjp(f, key, xp, vp, op) : pt_fn_vjp_batch(f, key, batch, xp, vp, op);
    else
      s = one ? pt_fn_jvp(f, key, xp, vp, op) : pt_fn_jvp_batch(f, key, batch, xp, vp, op);
    Py_END_ALLOW_THREADS
  }
  Py_DECREF(x);
  Py_DECREF(v);
  return out ? finish(s, out) : NULL;
}

static PyObject *fn_vjp(PyObject *self, PyObject *args, PyObject *kwargs) {
  return product(self, args, kwargs, 1);
}

static PyObject *fn_jvp(PyObject *self, PyObject *args, PyObject *kwargs) {
  return product(self, args, kwargs, 0);
}

/* The Jacobian (n_out x n_in) or, with hessian, the Hessian (n_in x n_in) at each row of x,
   row b with fold_in(key, b) as the batched calls do. */
static PyObject *matrix(PyObject *self, PyObject *args, int hessian) {
  const pt_fn *f = ((pt_py_fn *)self)->fn;
  const size_t n_in = pt_fn_n_in(f), n_out = pt_fn_n_out(f);
  pt_key key;
  PyObject *xo;
  size_t batch;
  if (!PyArg_ParseTuple(args, hessian ? "O&O:hessian" : "O&O:jacobian", pt_py_key_arg, &key, &xo))
    return NULL;
  PyArrayObject *x = input(xo, n_in, "x", &batch);
  if (!x) return NULL;
  const npy_intp tail[2] = {(npy_intp)(hessian ? n_in : n_out), (npy_intp)n_in};
  PyArrayObject *out = output(x, tail, 2);
  pt_status s = PT_EINVAL;
  if (out) {
    const float *xp = floats_of(x);
    float *op = floats_of(out);
    const size_t rows = batch ? batch : 1, cells = (size_t)(tail[0] * tail[1]);
    pt_py_forget_exception();
    Py_BEGIN_ALLOW_THREADS
    s = PT_OK;
    for (size_t b = 0; b < rows && s == PT_OK; b++) {
      const pt_key k = batch ? pt_key_fold_in(key, b) : key;
      s = hessian ? pt_fn_hessian(f, k, xp + b * n_in, op + b * cells)
                  : pt_fn_jacobian(f, k, xp + b * n_in, op + b * cells);
    }
    Py_END_ALLOW_THREADS
  }
  Py_DECREF(x);
  return out ? finish(s, out) : NULL;
}

static PyObject *fn_jacobian(PyObject *self, PyObject *args) { return matrix(self, args, 0); }

static PyObject *fn_hessian(PyObject *self, PyObject *args) { return matrix(self, args, 1); }

static PyObject *fn_value_and_grad(PyObject *self, PyObject *args) {
  const pt_fn *f = ((pt_py_fn *)self)->fn;
  const size_t n_in = pt_fn_n_in(f);
  pt_key key;
  PyObject *xo;
  size_t batch;
  if (!PyArg_ParseTuple(args, "O&O:value_and_grad", pt_py_key_arg, &key, &xo)) return NULL;
  if (pt_fn_n_out(f) != 1) {
    PyErr_Format(PyExc_ValueError, "value_and_grad: the function has %zu outputs, not 1",
                 pt_fn_n_out(f));
    return NULL;
  }
  PyArrayObject *x = input(xo, n_in, "x", &batch);
  if (!x) return NULL;
  const npy_intp tail = (npy_intp)n_in;
  PyArrayObject *value = output(x, NULL, 0), *grad = value ? output(x, &tail, 1) : NULL;
  pt_status s = PT_EINVAL;
  if (grad) {
    pt_py_forget_exception();
    Py_BEGIN_ALLOW_THREADS
    s = PyArray_NDIM(x) == 1
            ? pt_fn_value_and_grad(f, key, floats_of(x), floats_of(value), floats_of(grad))
            : pt_fn_value_and_grad_batch(f, key, batch, floats_of(x), floats_of(value),
                                         floats_of(grad));
    Py_END_ALLOW_THREADS
  }
  Py_DECREF(x);
  if (!grad || s != PT_OK) {
    Py_XDECREF(value);
    Py_XDECREF(grad);
    return grad ? pt_py_fail(s) : NULL;
  }
  /* a 0-d value as a numpy float32 scalar */
  PyObject *v = PyArray_NDIM(value) == 0 ? PyArray_Return(value) : (PyObject *)value;
  return Py_BuildValue("(NN)", v, (PyObject *)grad);
}

static PyMethodDef fn_methods[] = {
    {"eval", (PyCFunction)(void (*)(void))fn_eval, METH_VARARGS | METH_KEYWORDS,
     "eval(key, x) -> y: pt_fn_eval, or pt_fn_eval_batch over x's leading axes."},
    {"vjp", (PyCFunction)(void (*)(void))fn_vjp, METH_VARARGS | METH_KEYWORDS,
     "vjp(key, x, y_bar) -> x_bar = J(x)^T y_bar (pt_fn_vjp, batched over leading axes)."},
    {"jvp", (PyCFunction)(void (*)(void))fn_jvp, METH_VARARGS | METH_KEYWORDS,
     "jvp(key, x, x_dot) -> y_dot = J(x) x_dot (pt_fn_jvp, batched over leading axes)."},
    {"jacobian", fn_jacobian, METH_VARARGS,
     "jacobian(key, x) -> J (n_out x n_in): pt_fn_jacobian, row b of a batch with "
     "fold_in(key, b)."},
    {"hessian", fn_hessian, METH_VARARGS,
     "hessian(key, x) -> H (n_in x n_in): pt_fn_hessian, batched as jacobian."},
    {"value_and_grad", fn_value_and_grad, METH_VARARGS,
     "value_and_grad(key, x) -> (value, grad) of a function of one output."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef fn_getset[] = {{"n_in", fn_n_in, NULL, "inputs", NULL},
                                  {"n_out", fn_n_out, NULL, "outputs", NULL},
                                  {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pt_py_fn_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perturb.Fn",
    .tp_basicsize = sizeof(pt_py_fn),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A libperturb function R^n_in -> R^n_out (pt_fn): built-ins, callbacks, "
              "compositions and perturbed functions, made by this module's constructors.",
    .tp_dealloc = fn_dealloc,
    .tp_repr = fn_repr,
    .tp_call = (ternaryfunc)fn_eval,
    .tp_methods = fn_methods,
    .tp_getset = fn_getset,
};

/* ---- constructors ---------------------------------------------------------------------------- */

/* A size: an int >= 1 (0 and negatives reach the library, which refuses them). */
static int size_arg(PyObject *o, void *out) {
  const Py_ssize_t v = PyNumber_AsSsize_t(o, PyExc_OverflowError);
  if (v == -1 && PyErr_Occurred()) return 0;
  *(size_t *)out = v < 0 ? 0 : (size_t)v;
  return 1;
}

/* Sizes: an int (one segment) or a sequence of ints, into a PyMem array (*sizes) of *count. */
typedef struct sizes {
  size_t *at, count;
} sizes;

static int sizes_arg(PyObject *o, void *out) {
  sizes *s = out;
  if (PyLong_Check(o)) {
    s->count = 1;
    s->at = PyMem_Malloc(sizeof *s->at);
    return s->at ? size_arg(o, s->at) : (PyErr_NoMemory(), 0);
  }
  PyObject *seq = PySequence_Fast(o, "sizes: an int or a sequence of ints is needed");
  if (!seq) return 0;
  s->count = (size_t)PySequence_Fast_GET_SIZE(seq);
  s->at = PyMem_Malloc((s->count ? s->count : 1) * sizeof *s->at);
  int ok = s->at != NULL;
  if (!ok) PyErr_NoMemory();
  for (size_t i = 0; ok && i < s->count; i++)
    ok = size_arg(PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i), &s->at[i]);
  Py_DECREF(seq);
  if (!ok) {
    PyMem_Free(s->at);
    s->at = NULL;
  }
  return ok;
}

/* A constructor's result: the new Fn *fn (read after the call that set it), or the exception of
   s. */
static PyObject *made(pt_status s, pt_fn *const *fn) {
  if (s == PT_OK) return pt_py_fn_wrap(*fn);
  return PyErr_Occurred() ? NULL : pt_py_fail(s); /* an exception of the module's own first */
}

/* A built-in of one size (an int argument) or of segments (a sequence of their sizes). */
static PyObject *sized_or_segments(PyObject *args, const char *format,
                                   pt_status (*one)(size_t d, pt_fn **out),
                                   pt_status (*segments)(const size_t *sizes, size_t count,
                                                         pt_fn **out)) {
  sizes z;
  pt_fn *fn = NULL;
  if (!PyArg_ParseTuple(args, format, sizes_arg, &z)) return NULL;
  const pt_status s = PyLong_Check(PyTuple_GET_ITEM(args, 0)) ? one(z.at[0], &fn)
                                                               : segments(z.at, z.count, &fn);
  PyMem_Free(z.at);
  return made(s, &fn);
}

static PyObject *argmax_one_hot(PyObject *self, PyObject *args) {
  (void)self;
  return sized_or_segments(args, "O&:argmax_one_hot", pt_fn_argmax_one_hot,
                           pt_fn_argmax_one_hot_segments);
}

static PyObject *ranking(PyObject *self, PyObject *args) {
  (void)self;
  return sized_or_segments(args, "O&:ranking", pt_fn_ranking, pt_fn_ranking_segments);
}

static PyObject *sort(PyObject *self, PyObject *args) {
  (void)self;
  return sized_or_segments(args, "O&:sort", pt_fn_sort, pt_fn_sort_segments);
}

static PyObject *max_fn(PyObject *self, PyObject *args) {
  (void)self;
  return sized_or_segments(args, "O&:max", pt_fn_max, pt_fn_max_segments);
}

static PyObject *top_k(PyObject *self, PyObject *args) {
  (void)self;
  sizes z, k;
  pt_fn *fn = NULL;
  if (!PyArg_ParseTuple(args, "O&O&:top_k", sizes_arg, &z, sizes_arg, &k)) return NULL;
  pt_status s;
  if (PyLong_Check(PyTuple_GET_ITEM(args, 0)) && PyLong_Check(PyTuple_GET_ITEM(args, 1))) {
    s = pt_fn_top_k(z.at[0], k.at[0], &fn);
  } else if (z.count != k.count) {
    PyErr_Format(PyExc_ValueError, "top_k: %zu segment sizes but %zu values of k", z.count,
                 k.count);
    s = PT_OK;
  } else {
    s = pt_fn_top_k_segments(z.at, k.at, z.count, &fn);
  }
  PyMem_Free(z.at);
  PyMem_Free(k.at);
  if (PyErr_Occurred()) return NULL;
  return made(s, &fn);
}

static PyObject *permutation_matrix(PyObject *self, PyObject *args) {
  (void)self;
  return sized_or_segments(args, "O&:permutation_matrix", pt_fn_permutation_matrix,
                           pt_fn_permutation_matrix_segments);
}

static PyObject *from_callback(PyObject *self, PyObject *args, PyObject *kwargs) {
  (void)self;
  static char *names[] = {"n_in", "n_out", "fun", "vjp", NULL};
  size_t n_in, n_out;
  PyObject *fun, *vjp = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&O|O:from_callback", names, size_arg, &n_in,
                                   size_arg, &n_out, &fun, &vjp))
    return NULL;
  if (!PyCallable_Check(fun) || (vjp != Py_None && !PyCallable_Check(vjp))) {
    PyErr_SetString(PyExc_TypeError, "from_callback: fun and vjp must be callables");
    return NULL;
  }
  pt_fn *fn = NULL;
  return made(pt_py_callback_fn(n_in, n_out, fun, vjp == Py_None ? NULL : vjp, &fn), &fn);
}

static PyObject *compose(PyObject *self, PyObject *args) {
  (void)self;
  const pt_fn *outer, *inner;
  pt_fn *fn = NULL;
  if (!PyArg_ParseTuple(args, "O&O&:compose", pt_py_fn_arg, &outer, pt_py_fn_arg, &inner))
    return NULL;
  return made(pt_fn_compose(outer, inner, &fn), &fn);
}

/* A name among `names` (NULL-terminated) as its index; -1 with ValueError otherwise. */
static int choice(PyObject *o, const char *what, const char *const *names) {
  const char *s = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
  for (int i = 0; s && names[i]; i++)
    if (!strcmp(s, names[i])) return i;
  if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "%s: %R is not one of the choices", what, o);
  return -1;
}

static const char *const noise_names[] = {"gumbel", "normal", NULL};

static PyObject *make_perturbed_fun(PyObject *self, PyObject *args, PyObject *kwargs) {
  (void)self;
  static char *names[] = {"fn", "num_samples", "sigma", "noise", "use_baseline", NULL};
  const pt_fn *f;
  size_t samples;
  float sigma;
  PyObject *noise;
  int baseline;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&fOp:make_perturbed_fun", names,
                                   pt_py_fn_arg, &f, size_arg, &samples, &sigma, &noise,
                                   &baseline))
    return NULL;
  const int kind = choice(noise, "noise", noise_names);
  if (kind < 0) return NULL;
  pt_fn *fn = NULL;
  return made(pt_make_perturbed_fun(f, samples, sigma, (pt_noise)kind, baseline, &fn), &fn);
}

/* The options of make_perturbed_fun_ex and fenchel_young_loss, from keywords (defaults:
   pt_perturb_defaults). */
static int options_arg(PyObject *kwargs, const char *fname, pt_perturb_options *o) {
  static const char *const baselines[] = {"none", "f_x", "leave_one_out", NULL};
  static const char *const gradients[] = {"auto", "score", "pathwise", NULL};
  *o = pt_perturb_defaults();
  if (!kwargs) return 1;
  PyObject *name, *value;
  Py_ssize_t at = 0;
  while (PyDict_Next(kwargs, &at, &name, &value)) {
    const char *n = PyUnicode_AsUTF8(name);
    int v = 0;
    if (!n) return 0;
    if (!strcmp(n, "num_samples")) {
      if (!size_arg(value, &o->num_samples)) return 0;
    } else if (!strcmp(n, "sigma")) {
      const double d = PyFloat_AsDouble(value);
      if (d == -1.0 && PyErr_Occurred()) return 0;
      o->sigma = (float)d;
    } else if (!strcmp(n, "noise")) {
      if ((v = choice(value, "noise", noise_names)) < 0) return 0;
      o->noise = (pt_noise)v;
    } else if (!strcmp(n, "baseline")) {
      if ((v = choice(value, "baseline", baselines)) < 0) return 0;
      o->baseline = (pt_baseline)v;
    } else if (!strcmp(n, "gradient")) {
      if ((v = choice(value, "gradient", gradients)) < 0) return 0;
      o->gradient = (pt_gradient)v;
    } else if (!strcmp(n, "antithetic") || !strcmp(n, "multiplicative") ||
               !strcmp(n, "block_diagonal") || !strcmp(n, "independent_jacobian")) {
      if ((v = PyObject_IsTrue(value)) < 0) return 0;
      *(n[0] == 'a'   ? &o->antithetic
        : n[0] == 'm' ? &o->multiplicative
        : n[0] == 'b' ? &o->block_diagonal
                      : &o->independent_jacobian) = v;
    } else {
      PyErr_Format(PyExc_TypeError, "%s: no option %R", fname, name);
      return 0;
    }
  }
  return 1;
}

/* A constructor of (fn, **options): make_perturbed_fun_ex and fenchel_young_loss. */
static PyObject *with_options(PyObject *args, PyObject *kwargs, const char *format,
                              pt_status (*make)(const pt_fn *f, const pt_perturb_options *o,
                                                pt_fn **out)) {
  const pt_fn *f;
  pt_perturb_options o;
  if (!PyArg_ParseTuple(args, format, pt_py_fn_arg, &f) ||
      !options_arg(kwargs, format + 3, &o)) /* format is "O&:name" */
    return NULL;
  pt_fn *fn = NULL;
  return made(make(f, &o, &fn), &fn);
}

static PyObject *make_perturbed_fun_ex(PyObject *self, PyObject *args, PyObject *kwargs) {
  (void)self;
  return with_options(args, kwargs, "O&:make_perturbed_fun_ex", pt_make_perturbed_fun_ex);
}

static PyObject *fenchel_young_loss(PyObject *self, PyObject *args, PyObject *kwargs) {
  (void)self;
  return with_options(args, kwargs, "O&:fenchel_young_loss", pt_fenchel_young_loss);
}

#define PT_PY_KW(f) (PyCFunction)(void (*)(void))(f), METH_VARARGS | METH_KEYWORDS
PyMethodDef pt_py_fn_constructors[] = {
    {"argmax_one_hot", argmax_one_hot, METH_VARARGS,
     "argmax_one_hot(d | sizes) -> Fn: the one-hot of the argmax (of each segment)."},
    {"ranking", ranking, METH_VARARGS,
     "ranking(d | sizes) -> Fn: the rank of each input (in its segment), as floats."},
    {"top_k", top_k, METH_VARARGS,
     "top_k(d, k) | top_k(sizes, ks) -> Fn: 1 at the k greatest inputs (of each segment)."},
    {"max", max_fn, METH_VARARGS, "max(d | sizes) -> Fn: the greatest input (of each segment)."},
    {"sort", sort, METH_VARARGS,
     "sort(d | sizes) -> Fn: the inputs (of each segment) in ascending order."},
    {"permutation_matrix", permutation_matrix, METH_VARARGS,
     "permutation_matrix(d or sizes) -> Fn: the d x d matrix of the sorting permutation, "
     "flattened; of segments, each segment's matrix after the ones before."},
    {"from_callback", PT_PY_KW(from_callback),
     "from_callback(n_in, n_out, fun, vjp=None) -> Fn: fun(x) on a (batch, n_in) float32 "
     "array returns (batch, n_out) numbers; vjp(x, y_bar) at one point returns x_bar."},
    {"compose", compose, METH_VARARGS, "compose(outer, inner) -> Fn: outer(inner(x))."},
    {"make_perturbed_fun", PT_PY_KW(make_perturbed_fun),
     "make_perturbed_fun(fn, num_samples, sigma, noise, use_baseline) -> Fn: "
     "pt_make_perturbed_fun (the score-function estimator)."},
    {"make_perturbed_fun_ex", PT_PY_KW(make_perturbed_fun_ex),
     "make_perturbed_fun_ex(fn, **options) -> Fn: pt_make_perturbed_fun_ex with the keywords "
     "num_samples, sigma, noise ('gumbel', 'normal'), baseline ('none', 'f_x', "
     "'leave_one_out'), gradient ('auto', 'score', 'pathwise'), antithetic, multiplicative, "
     "block_diagonal, independent_jacobian."},
    {"fenchel_young_loss", PT_PY_KW(fenchel_young_loss),
     "fenchel_young_loss(opt, **options) -> Fn of (theta, y_true): pt_fenchel_young_loss."},
    {NULL, NULL, 0, NULL}};
