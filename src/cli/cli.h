/* cli.h — what the subcommands share: the command table entry type, the
 * exit codes, and parsing of the options every reading command takes.
 * The CLI only parses arguments and prints; the work is in the library. */
#ifndef GW_CLI_CLI_H
#define GW_CLI_CLI_H

#include "core/model.h"
#include "core/parse.h"

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

/* ------------------------------------------------------------- options
 *
 * Every command parses argv with one scanner (core/parse.h) over its own
 * table(s) of options plus the common ones (-h/--help, --list-options), so
 * `--opt=value` and `--opt value` are the same everywhere and a command's
 * table is the single list of what it accepts. Option ids: a command's own
 * from 1, the source options from GW_CLI_ID_SOURCE, the placement request's
 * from GW_PLACE_OPT_BASE (place/request.h).
 *
 * --list-options (not in the help texts) prints the table, one option a
 * line: "NAME<TAB>ALIAS<TAB>VALUE" ("-" for none); the tests derive the
 * options of every command from it, and so can shell completion.
 */
enum { GW_CLI_ID_SOURCE = 1000, GW_CLI_ID_HELP = 9000, GW_CLI_ID_LIST };

/* What gw_cli_next returns besides an option id (> 0). */
enum {
    GW_CLI_DONE = GW_OPT_END,      /* no more arguments ("--" for run: p->scan.i after it) */
    GW_CLI_ARG = GW_OPT_POSITIONAL, /* p->scan.value is a positional argument */
    GW_CLI_EXIT_OK = -100,         /* --help / --list-options printed: exit 0 */
    GW_CLI_EXIT_USAGE = -101,      /* a bad command line, already printed: exit 2 */
};

#define GW_CLI_MAX_TABLES 6

/* A command's scan. Borrowed: argv, the tables; owns nothing. */
typedef struct gw_cli_parse {
    gw_opt_scan scan;
    const char *cmd;           /* "serve", for messages */
    void (*usage)(FILE *out);  /* the command's --help text */
    const gw_opt *tables[GW_CLI_MAX_TABLES + 2];
} gw_cli_parse;

/* Prepares the scan of argv[1..argc) over tables (NULL-terminated, at most
 * GW_CLI_MAX_TABLES) and the common options. */
void gw_cli_parse_init(gw_cli_parse *p, const char *cmd, int argc, char **argv,
                       const gw_opt *const *tables, void (*usage)(FILE *));

/* The next option's id, GW_CLI_ARG, GW_CLI_DONE, or GW_CLI_EXIT_OK /
 * GW_CLI_EXIT_USAGE after printing (help, the table, or the problem). */
int gw_cli_next(gw_cli_parse *p);

/* Prints "gpuwatch CMD: --opt: REASON" for the current option's value
 * (why->message from a core/parse.h parser) and returns GW_CLI_EXIT_USAGE. */
int gw_cli_bad_value(const gw_cli_parse *p, const gw_error *why);

/* Options of every command that reads the machine (--sources, --nvml-library,
 * --proc-root, --sys-root, --call-timeout, --no-processes). */
extern const gw_opt gw_cli_source_opts[];

/* Applies source option id (with p's current value) to cfg: 1 done, 0 when
 * id is not a source option, GW_CLI_EXIT_USAGE after printing a bad value. */
int gw_cli_source_apply(const gw_cli_parse *p, int id, gw_config *cfg);

/* The usage lines of those options, for --help texts. */
extern const char gw_cli_source_options_help[];

/* ----------------------------------------------- commands with a config
 *
 * serve and pool take their settings as keys: from a file (--config), from
 * --set KEY=VALUE, and from flags that are shorthands for one key each. */
enum { GW_CLI_O_CONFIG = 1, GW_CLI_O_SET, GW_CLI_O_PRINT_CONFIG, GW_CLI_O_SHORTHAND };

/* A flag that sets key; value NULL: a flag without a value (the command
 * says what it sets the key to). */
typedef struct gw_cli_shorthand {
    const char *flag, *value, *key;
} gw_cli_shorthand;

/* Fills t (room for n + 4 entries) with --config/-c, --set and
 * --print-config, then one option per shorthand (id GW_CLI_O_SHORTHAND +
 * its index), then the end mark. */
void gw_cli_config_opts(gw_opt *t, const gw_cli_shorthand *sh, size_t n);

/* Checks a --set value: 0 when it is KEY=VALUE with a key, else prints
 * why and returns GW_CLI_EXIT_USAGE. */
int gw_cli_check_set(const gw_cli_parse *p, const char *v);

int gw_cmd_report(int argc, char **argv);
/* `gpuwatch serve`: the daemon (src/http/daemon.h). */
int gw_cmd_serve(int argc, char **argv);
int gw_cmd_pool(int argc, char **argv);
int gw_cmd_fit(int argc, char **argv);
int gw_cmd_place(int argc, char **argv);
int gw_cmd_run(int argc, char **argv);
int gw_cmd_gguf(int argc, char **argv);
/* `gpuwatch progress`: a job's progress report (src/progress/). */
int gw_cmd_progress(int argc, char **argv);
/* `gpuwatch top`: the live dashboard (src/top/). */
int gw_cmd_top(int argc, char **argv);

#endif
