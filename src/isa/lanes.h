/* SPDX-License-Identifier: MIT */
/* The columns paths of the row kernels (src/kernels/argmax_rows.c.j2, sort_rows.c.j2): PT_LANES
   rows at a time, one per lane, each vector gathering one column of them.  ISA-neutral: it is
   written with the operations of the layer included before it (README.md). */
#ifndef PT_ISA_LANES_H
#define PT_ISA_LANES_H

#include <stddef.h>
#include <stdint.h>

/* 1 when the 32-bit lane offsets of PT_LANES rows of `stride` elements, plus a row of d, fit. */
static inline int pt_lanes_fit(size_t stride, size_t d) {
  return stride <= (INT32_MAX - d) / (PT_LANES > 1 ? PT_LANES - 1 : 1);
}

/* Lane l: l * stride, the offset of row l (pt_lanes_fit must hold). */
static inline vi vi_lane_offsets(size_t stride) {
  int32_t offset[PT_LANES];
  for (size_t l = 0; l < PT_LANES; l++) offset[l] = (int32_t)(l * stride);
  return vi_loadu(offset);
}

#endif
