/* First-failure-wins error recording. */
#include "util/err.h"
#include <stdarg.h>
#include <stdio.h>

fc_status fc_fail(fc_err *err, fc_status status, const char *fmt, ...) {
  if (err && err->status == FC_OK) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* names come from untrusted files: keep the message one printable line */
    for (char *p = err->msg; *p; p++)
      if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    err->status = status;
  }
  return status;
}

void fc_err_clear(fc_err *err) {
  err->status = FC_OK;
  err->msg[0] = '\0';
}
