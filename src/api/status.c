/* SPDX-License-Identifier: MIT */
/* Version and status strings. */
#include "perturb.h"

#define PT_STR_(x) #x
#define PT_STR(x) PT_STR_(x)

const char *pt_version(void) {
  return PT_STR(PT_VERSION_MAJOR) "." PT_STR(PT_VERSION_MINOR) "." PT_STR(PT_VERSION_PATCH);
}

const char *pt_strerror(pt_status s) {
  switch (s) {
    case PT_OK: return "success";
    case PT_EINVAL: return "invalid argument";
    case PT_ENOMEM: return "out of memory";
    case PT_EOVERFLOW: return "size overflows the supported range";
    case PT_EUNSUPPORTED: return "not supported (ISA unavailable or operation not provided)";
    case PT_ECALLBACK: return "a user callback failed";
    case PT_ECANCELED: return "canceled by the progress handler";
    default: return "unknown status";
  }
}
