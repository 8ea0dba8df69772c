/* TEMPORARY stand-in (replaced by the pthreadpool pool): a thread per task. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

static size_t threads = 2;

size_t pt_threads(void) { return threads; }
pt_status pt_threads_ready(void) { return PT_OK; }
pt_status pt_set_num_threads(size_t n) {
  if (n == 0) return PT_EINVAL;
  threads = n;
  return PT_OK;
}
size_t pt_get_num_threads(void) { return threads; }

typedef struct arg {
  void (*task)(void *, size_t);
  void *ctx;
  size_t i;
} arg;

static void *run(void *p) {
  arg *a = p;
  a->task(a->ctx, a->i);
  return NULL;
}

void pt_parallel_for(size_t count, void (*task)(void *ctx, size_t i), void *ctx) {
  pthread_t t[64];
  arg a[64];
  if (count > 64) count = 64;
  for (size_t i = 1; i < count; i++) {
    a[i] = (arg){task, ctx, i};
    pthread_create(&t[i], NULL, run, &a[i]);
  }
  if (count) task(ctx, 0);
  for (size_t i = 1; i < count; i++) pthread_join(t[i], NULL);
}
