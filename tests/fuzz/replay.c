/* SPDX-License-Identifier: MIT */
/* Runs a fuzz harness over files, as libFuzzer would run them once each: make check replays the
   checked-in corpus (tests/fuzz/corpus/<harness>/) through it, built with the ordinary compiler,
   so that every finding stays fixed.  replay FILE... ; a directory stands for its files. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 1;
  }
  uint8_t *data = NULL;
  size_t size = 0, cap = 0, got;
  do {
    if (size == cap) {
      cap = cap ? 2 * cap : 4096;
      uint8_t *more = realloc(data, cap);
      if (!more) {
        free(data);
        fclose(f);
        fprintf(stderr, "replay: out of memory\n");
        return 1;
      }
      data = more;
    }
    got = fread(data + size, 1, cap - size, f);
    size += got;
  } while (got);
  fclose(f);
  LLVMFuzzerTestOneInput(data, size);
  free(data);
  return 0;
}

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  size_t inputs = 0;
  int failed = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: no such file %s\n", argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      failed |= run_file(argv[i]);
      inputs++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    if (!d) return 1;
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
      if (e->d_name[0] == '.') continue;
      char **more = realloc(names, (n + 1) * sizeof *names);
      size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
      char *path = more ? malloc(len) : NULL;
      if (!path) return 1;
      names = more;
      snprintf(path, len, "%s/%s", argv[i], e->d_name);
      names[n++] = path;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    for (size_t k = 0; k < n; k++) {
      failed |= run_file(names[k]);
      free(names[k]);
    }
    free(names);
    inputs += n;
  }
  printf("%zu passed, %d failed\n", failed ? 0 : inputs, failed ? 1 : 0);
  return failed;
}
