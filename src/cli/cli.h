/* cli.h — what the subcommands share: the command table entry type, the
 * exit codes, and parsing of the options every reading command takes.
 * The CLI only parses arguments and prints; the work is in the library. */
#ifndef GW_CLI_CLI_H
#define GW_CLI_CLI_H

#include "gpuwatch.h"

#include <stdio.h>

/* Exit codes (documented in docs/cli.md and `gpuwatch --help`). */
enum {
    GW_EXIT_OK = 0,       /* done; includes CPU-only mode */
    GW_EXIT_ERROR = 1,    /* could not do the job (bad file, out of memory, ...) */
    GW_EXIT_USAGE = 2,    /* bad command line */
    GW_EXIT_DEGRADED = 3, /* done, but a GPU is lost, in error or stale */
};

/* A subcommand: argv[0] is the subcommand's name. Returns an exit code. */
typedef struct gw_cli_command {
    const char *name;
    const char *summary; /* one line for `gpuwatch --help` */
    int (*run)(int argc, char **argv);
} gw_cli_command;

/* Options of every command that reads the machine. If argv[*i] (with its
 * value at argv[*i + 1] when it takes one) is one of them, stores it in cfg,
 * advances *i past it and returns 1; returns 0 when it is not one of them and
 * -1 (after printing the problem to stderr) when its value is missing. */
int gw_cli_source_option(int argc, char **argv, int *i, gw_config *cfg);

/* The usage lines of those options, for --help texts. */
extern const char gw_cli_source_options_help[];

int gw_cmd_report(int argc, char **argv);
/* `gpuwatch serve`: the daemon (src/http/daemon.h). */
int gw_cmd_serve(int argc, char **argv);
int gw_cmd_fit(int argc, char **argv);
int gw_cmd_place(int argc, char **argv);
int gw_cmd_run(int argc, char **argv);
int gw_cmd_gguf(int argc, char **argv);

#endif
