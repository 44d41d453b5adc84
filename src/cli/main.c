/* flopcut command line: dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

static void usage(FILE *f) {
  fputs("usage: flopcut COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  profile MODEL   count MACs, FLOPs, params, activations and sparsity per layer\n"
        "  run MODEL       run the model on .npy inputs, write its outputs as .npy\n"
        "  bench MODEL     time the model (median, min, GFLOP/s; per-op-type breakdown)\n"
        "  prune MODEL     zero weights (Global MP, per layer, N:M, blocks) and write the ONNX\n"
        "  sensitivity MODEL  prune each layer alone, measure how much the output moves\n"
        "  eval MODEL      top-1/top-5 accuracy and images/s on labelled images (IDX, .npy)\n"
        "  sweep MODEL     prune at several sparsities and methods, evaluate each (table/JSON/CSV)\n"
        "\n"
        "Run 'flopcut COMMAND --help' for a command's options.\n",
        f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    puts("flopcut 0.1.0");
    return 0;
  }
  if (!strcmp(argv[1], "profile")) return fc_cmd_profile(argc - 1, argv + 1);
  if (!strcmp(argv[1], "run") || !strcmp(argv[1], "bench") || !strcmp(argv[1], "eval") ||
      !strcmp(argv[1], "prune") || !strcmp(argv[1], "sweep")) /* sweep's children inherit the setting */
    fc_cli_openmp_env(argv);
  if (!strcmp(argv[1], "run")) return fc_cmd_run(argc - 1, argv + 1);
  if (!strcmp(argv[1], "bench")) return fc_cmd_bench(argc - 1, argv + 1);
  if (!strcmp(argv[1], "prune")) return fc_cmd_prune(argc - 1, argv + 1);
  if (!strcmp(argv[1], "sensitivity")) return fc_cmd_sensitivity(argc - 1, argv + 1);
  if (!strcmp(argv[1], "eval")) return fc_cmd_eval(argc - 1, argv + 1);
  if (!strcmp(argv[1], "sweep")) return fc_cmd_sweep(argc - 1, argv + 1);
  fprintf(stderr, "flopcut: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
