/* Output helpers for the CLI: JSON string escaping, number formatting, error lines. */
#include <stdarg.h>
#include <stdio.h>
#include "cli/cli.h"

void fc_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", f);
    else if (*p == '\t') fputs("\\t", f);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

const char *fc_fmt_int(int64_t v, char *buf, size_t n) {
  char tmp[32];
  int len = snprintf(tmp, sizeof tmp, "%lld", (long long)(v < 0 ? -v : v));
  size_t at = 0;
  if (v < 0 && at + 1 < n) buf[at++] = '-';
  for (int i = 0; i < len && at + 1 < n; i++) {
    if (i && (len - i) % 3 == 0 && at + 1 < n) buf[at++] = ',';
    buf[at++] = tmp[i];
  }
  buf[at] = '\0';
  return buf;
}

const char *fc_fmt_si(double v, char *buf, size_t n) {
  const char *units = " KMGTP";
  int u = 0;
  while (v >= 1000.0 && u < 5) { v /= 1000.0; u++; }
  if (u == 0) snprintf(buf, n, "%.0f", v);
  else snprintf(buf, n, "%.2f%c", v, units[u]);
  return buf;
}

int fc_cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("flopcut: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

int fc_cli_take_model(const char *cmd, const char *arg, const char **model) {
  if (arg[0] == '-' && arg[1]) return fc_cli_error("%s: unknown option '%s' (see flopcut %s --help)", cmd, arg, cmd);
  if (*model) return fc_cli_error("%s: more than one model given ('%s' and '%s')", cmd, *model, arg);
  *model = arg;
  return 0;
}
