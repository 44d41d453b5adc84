/* Error reporting shared by the whole library: a status code plus one sentence.
 * Functions that can fail take an fc_err* and return an fc_status. */
#ifndef FC_UTIL_ERR_H
#define FC_UTIL_ERR_H
#include "flopcut.h"

typedef struct fc_err {
  fc_status status;
  char msg[512];
} fc_err;

/* Records the first failure (later ones are ignored: the root cause matters) and returns status. */
fc_status fc_fail(fc_err *err, fc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fc_err_clear(fc_err *err);
#endif
