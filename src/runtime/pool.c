/* SPDX-License-Identifier: MIT */
/* The thread pool: one process-wide pthreadpool, made on the first call that has work for
   several threads and re-made when the thread count changed.  It has one user at a time: a
   caller takes it with an atomic try-acquire, and a caller that finds it taken (another user
   thread, or a task's nested call) runs its tasks itself, in order, instead of waiting.  That
   keeps every thread count's results the same (the tasks are the same, only their threads
   differ), never queues a user thread behind another, and never runs more than one pool's
   worth of threads. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "runtime/pool.h"

#include "api/error.h"
#include "runtime/progress.h"

#include <pthread.h>
#include <pthreadpool.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The largest thread count pt_set_num_threads and PERTURB_NUM_THREADS accept (perturb.h).
   pthreadpool does not check pthread_create, so a pool larger than the system lets a process
   create would wait forever for its missing workers; this is far above any useful count and
   below the usual system limits (kernel.threads-max, pid_max, a container's pids.max). */
#define PT_THREADS_MAX 1024

/* ---- the thread count --------------------------------------------------------------------- */

static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;
static size_t default_count;   /* PERTURB_NUM_THREADS, else the CPUs of the affinity mask */
static int env_refused;        /* PERTURB_NUM_THREADS is set to something else than a count */
static char env_value[40];     /* its value, for the sentence (cut short if longer) */
static _Atomic size_t chosen;  /* the last pt_set_num_threads; 0 before the first */

/* A count of 1 to PT_THREADS_MAX written with decimal digits only, else 0.  The empty string is
   no count: unlike PERTURB_ISA, whose empty value means the default, a thread count that is
   set must say how many. */
static size_t parse_count(const char *s) {
  size_t n = 0;
  if (!*s) return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    n = n * 10 + (size_t)(*s - '0');
    if (n > PT_THREADS_MAX) return 0; /* also keeps the digits that follow from overflowing */
  }
  return n;
}

/* The CPUs this process may run on, read once: a process that changes its own affinity later
   sets its thread count itself. */
static size_t cpu_count(void) {
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return (size_t)CPU_COUNT(&set);
#endif
  /* more CPUs than a cpu_set_t holds, or no affinity interface */
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? (size_t)online : 1;
}

static void read_defaults(void) {
  const char *env = getenv("PERTURB_NUM_THREADS");
  size_t n = env ? parse_count(env) : 0;
  env_refused = env && n == 0;
  if (env_refused) snprintf(env_value, sizeof env_value, "%s", env);
  if (n == 0) n = cpu_count();
  default_count = n < PT_THREADS_MAX ? n : PT_THREADS_MAX;
}

size_t pt_threads(void) {
  const size_t n = atomic_load_explicit(&chosen, memory_order_relaxed);
  if (n) return n;
  pthread_once(&defaults_once, read_defaults);
  return default_count;
}

pt_status pt_threads_ready(void) {
  if (atomic_load_explicit(&chosen, memory_order_relaxed)) return PT_OK;
  pthread_once(&defaults_once, read_defaults);
  if (!env_refused) return PT_OK;
  return pt_fail(PT_EINVAL,
                 "PERTURB_NUM_THREADS is \"%s\", not a count of 1 to %d in decimal digits "
                 "(pt_set_num_threads overrides it)",
                 env_value, PT_THREADS_MAX);
}

pt_status pt_set_num_threads(size_t n) {
  PT_CALL("pt_set_num_threads");
  if (n == 0 || n > PT_THREADS_MAX)
    return pt_fail(PT_EINVAL, "n is %zu, not a count of 1 to %d", n, PT_THREADS_MAX);
  atomic_store_explicit(&chosen, n, memory_order_relaxed);
  return PT_OK;
}

size_t pt_get_num_threads(void) { return pt_threads(); }

/* ---- the pool ----------------------------------------------------------------------------- */

static atomic_flag busy = ATOMIC_FLAG_INIT;
static pthreadpool_t pool; /* these two belong to whoever holds `busy` */
static size_t pool_threads;

/* A forked child has only the thread that forked: the parent's workers are gone, and so is
   whoever held the pool.  It starts afresh (the parent's pool object is left behind, unused);
   without this its first parallel call would wait forever for workers that do not exist. */
static void forget_pool_in_child(void) {
  pool = NULL;
  pool_threads = 0;
  atomic_flag_clear(&busy);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_pool_in_child); }

/* When the library is unloaded (dlclose) or the process exits, the workers are joined: a
   worker left running code of an unloaded library would crash, and memory checkers would
   report its thread as leaked.  A pool some thread is still computing on is left alone. */
__attribute__((destructor)) static void destroy_pool(void) {
  if (atomic_flag_test_and_set_explicit(&busy, memory_order_acquire)) return;
  pthreadpool_destroy(pool); /* NULL is a no-op */
  pool = NULL;
  pool_threads = 0;
  atomic_flag_clear_explicit(&busy, memory_order_release);
}

/* Under ThreadSanitizer: pthreadpool hands tasks over and waits for them with atomics and
   futexes inside a library that was not instrumented, so the sanitizer would see none of that
   ordering and report every task's output as racing with the caller's reads.  These
   annotations state what pthreadpool guarantees and no more: a task sees what the caller did
   before the call, and the caller, after it, what every task did.  Tasks are not ordered with
   one another (two sync addresses, so that no task acquires another's release), so the
   sanitizer still reports tasks that touch the same memory. */
#if defined(__SANITIZE_THREAD__)
#define PT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PT_TSAN 1
#endif
#endif
#ifdef PT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

typedef struct annotated {
  void (*task)(void *ctx, size_t i);
  void *ctx;
  char start, end; /* released by the caller before the call / by each task when done */
} annotated;

static void annotated_task(void *p, size_t i) {
  annotated *a = p;
  __tsan_acquire(&a->start);
  a->task(a->ctx, i);
  __tsan_release(&a->end);
}

static void parallelize(pthreadpool_t pool, void (*task)(void *, size_t), void *ctx, size_t count,
                        uint32_t flags) {
  annotated a = {task, ctx, 0, 0};
  __tsan_release(&a.start);
  pthreadpool_parallelize_1d(pool, annotated_task, &a, count, flags);
  __tsan_acquire(&a.end);
}
#else
#define parallelize pthreadpool_parallelize_1d
#endif

/* A task of a call with a progress tracker, run by a worker under that tracker. */
typedef struct tracked {
  void (*task)(void *ctx, size_t i);
  void *ctx;
  pt_tracker *tracker;
} tracked;

static void tracked_task(void *p, size_t i) {
  const tracked *t = p;
  pt_tracker *was = pt_progress_adopt(t->tracker);
  t->task(t->ctx, i);
  pt_progress_adopt(was);
}

void pt_parallel_for(size_t count, void (*task)(void *ctx, size_t i), void *ctx) {
  const size_t n = count > 1 ? pt_threads() : 1;
  if (n == 1 || atomic_flag_test_and_set_explicit(&busy, memory_order_acquire)) {
    for (size_t i = 0; i < count; i++) task(ctx, i);
    return;
  }
  tracked t = {task, ctx, pt_progress_current()};
  if (t.tracker) {
    task = tracked_task;
    ctx = &t;
  }
  if (pool_threads != n) {
    pthread_once(&atfork_once, register_atfork);
    pthreadpool_destroy(pool); /* NULL is a no-op */
    /* NULL if it cannot be made: pthreadpool then runs the tasks on this thread, in order */
    pool = pthreadpool_create(n);
    pool_threads = pool ? n : 0;
  }
  /* No PTHREADPOOL_FLAG_DISABLE_DENORMALS: results must be bitwise those of one thread.
     PTHREADPOOL_FLAG_YIELD_WORKERS: the workers sleep as soon as the call is done instead of
     spinning for the next one, which would take cores from the program's own threads between
     calls, and which measured slower after a pause in calls (README, "Threads"). */
  parallelize(pool, task, ctx, count, PTHREADPOOL_FLAG_YIELD_WORKERS);
  atomic_flag_clear_explicit(&busy, memory_order_release);
}
