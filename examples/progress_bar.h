/* SPDX-License-Identifier: MIT */
/* A progress bar for long library calls, on a terminal only: pt_set_progress_handler(3) calls
   it from the calling thread once a call has run for a second, then every second.  progress_bar_start() installs it when stderr is a terminal (so logs and pipes stay
   clean); progress_bar_end() erases the bar once the long work is over.  Header-only, so that
   each example stays one file to read. */
#ifndef PROGRESS_BAR_H
#define PROGRESS_BAR_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <perturb.h>

static int progress_bar_drawn;

static int progress_bar_draw(void *user, uint64_t done, uint64_t total) {
  enum { WIDTH = 40 };
  static const char bar[WIDTH + 1] = "========================================";
  const int filled = total ? (int)((double)done / (double)total * WIDTH) : 0;
  fprintf(stderr, "\r%s [%.*s%*s] %3d%%", (const char *)user, filled, bar, WIDTH - filled, "",
          total ? (int)(100.0 * (double)done / (double)total) : 0);
  fflush(stderr);
  progress_bar_drawn = 1;
  return 0; /* never cancels */
}

static void progress_bar_start(const char *what) {
  if (isatty(STDERR_FILENO)) pt_set_progress_handler(progress_bar_draw, (void *)what, 1.0);
}

static void progress_bar_end(void) {
  pt_set_progress_handler(NULL, NULL, 0.0);
  if (progress_bar_drawn) fputs("\r\033[K", stderr);
  progress_bar_drawn = 0;
}

#endif
