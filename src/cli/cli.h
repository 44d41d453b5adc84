/* Shared pieces of the flopcut command line: subcommand entry points and output helpers. */
#ifndef FC_CLI_CLI_H
#define FC_CLI_CLI_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int fc_cmd_profile(int argc, char **argv);
int fc_cmd_prune(int argc, char **argv);

/* Writes s as a JSON string literal (quoted, escaped). */
void fc_json_str(FILE *f, const char *s);
/* 1234567 → "1,234,567" into buf. */
const char *fc_fmt_int(int64_t v, char *buf, size_t n);
/* 4089184256 → "4.09G" into buf. */
const char *fc_fmt_si(double v, char *buf, size_t n);
/* Prints "flopcut: <msg>" on stderr; returns the exit code to use. */
int fc_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
