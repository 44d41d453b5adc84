/* Shared pieces of the flopcut command line: subcommand entry points and output helpers. */
#ifndef FC_CLI_CLI_H
#define FC_CLI_CLI_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int fc_cmd_profile(int argc, char **argv);
int fc_cmd_run(int argc, char **argv);
int fc_cmd_bench(int argc, char **argv);
/* Sets OpenMP's spin (GOMP_SPINCOUNT: short on a busy machine, long otherwise) unless the user
 * set one, re-executing the process once. */
void fc_cli_openmp_env(char **argv);
int fc_cmd_prune(int argc, char **argv);
int fc_cmd_sensitivity(int argc, char **argv);
int fc_cmd_eval(int argc, char **argv);
int fc_cmd_sweep(int argc, char **argv);

/* Writes s as a JSON string literal (quoted, escaped). */
void fc_json_str(FILE *f, const char *s);
/* 1234567 → "1,234,567" into buf. */
const char *fc_fmt_int(int64_t v, char *buf, size_t n);
/* 4089184256 → "4.09G" into buf. */
const char *fc_fmt_si(double v, char *buf, size_t n);
/* Prints "flopcut: <msg>" on stderr; returns the exit code to use. */
int fc_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last branch of a command's option loop: arg is an unknown option (error) or the model path,
 * which may be given once. 0 when taken, else fc_cli_error's status. */
int fc_cli_take_model(const char *cmd, const char *arg, const char **model);

/* --input NAME=FILE.npy handling shared by run and bench (src/cli/model_inputs.c). */
#include "data/array.h"
#define FC_CLI_MAX_INPUTS 16
typedef struct fc_cli_inputs {
  int n;
  char names[FC_CLI_MAX_INPUTS][256];
  fc_array arrays[FC_CLI_MAX_INPUTS];
  fc_tensor_view views[FC_CLI_MAX_INPUTS];
} fc_cli_inputs;
/* Reads the .npy files of specs ("NAME=FILE" or, by position, "FILE"), checks them against the
 * model's inputs (dtype, fixed dims, none missing when require_all) and loads the model with their
 * shapes plus `shapes`. Returns 0, or prints one error line and returns the exit code. */
int fc_cli_load_model(fc_ctx *ctx, const char *cmd, const char *model_path, char **specs, int n_specs,
                      const fc_input_shape *shapes, int n_shapes, bool require_all, fc_cli_inputs *in,
                      fc_model **model);
void fc_cli_inputs_free(fc_cli_inputs *in);
#endif
