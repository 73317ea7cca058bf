/* options.c — the command line of every command (cli.h).
 *
 * Owns: the scan of a command's option tables plus the common options
 * (-h/--help, --list-options), the messages of a bad command line
 * ("gpuwatch CMD: ..."), and the source options shared by every command
 * that reads the machine. The grammar itself is core/parse.c. */
#include "cli/cli.h"
#include "core/util.h"

#include <stddef.h>
#include <string.h>

enum {
    SRC_SOURCES = GW_CLI_ID_SOURCE, SRC_NVML_LIBRARY, SRC_PROC_ROOT, SRC_SYS_ROOT,
    SRC_CALL_TIMEOUT, SRC_NO_PROCESSES,
};

const gw_opt gw_cli_source_opts[] = {
    {"--sources", NULL, "LIST", SRC_SOURCES},
    {"--nvml-library", NULL, "PATH", SRC_NVML_LIBRARY},
    {"--proc-root", NULL, "DIR", SRC_PROC_ROOT},
    {"--sys-root", NULL, "DIR", SRC_SYS_ROOT},
    {"--call-timeout", NULL, "MS", SRC_CALL_TIMEOUT},
    {"--no-processes", NULL, NULL, SRC_NO_PROCESSES},
    {NULL, NULL, NULL, 0},
};

static const gw_opt common_opts[] = {
    {"--help", "-h", NULL, GW_CLI_ID_HELP},
    {"--list-options", NULL, NULL, GW_CLI_ID_LIST},
    {NULL, NULL, NULL, 0},
};

const char gw_cli_source_options_help[] =
    "  --sources LIST        only these sources, comma-separated (nvml,host,...)\n"
    "  --nvml-library PATH   NVML library to load (env GPUWATCH_NVML_LIBRARY;\n"
    "                        default libnvidia-ml.so.1)\n"
    "  --proc-root DIR       read procfs below DIR (env GPUWATCH_PROC_ROOT; /proc)\n"
    "  --sys-root DIR        read sysfs below DIR (env GPUWATCH_SYS_ROOT; /sys)\n"
    "  --call-timeout MS     deadline of one nvidia-smi/amd-smi/rocm-smi call\n"
    "                        (env GPUWATCH_CALL_TIMEOUT_MS; default 5000)\n"
    "  --no-processes        do not read per-process GPU use\n";

void gw_cli_parse_init(gw_cli_parse *p, const char *cmd, int argc, char **argv,
                       const gw_opt *const *tables, void (*usage)(FILE *))
{
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->usage = usage;
    size_t n = 0;
    for (; tables && tables[n] && n < GW_CLI_MAX_TABLES; n++)
        p->tables[n] = tables[n];
    p->tables[n] = common_opts;
    p->tables[n + 1] = NULL;
    p->scan.argc = argc;
    p->scan.argv = argv;
    p->scan.tables = p->tables;
    p->scan.i = 1;
}

static void list_options(const gw_cli_parse *p)
{
    for (size_t t = 0; p->tables[t]; t++)
        for (const gw_opt *o = p->tables[t]; o->name; o++)
            if (o->id != GW_CLI_ID_LIST)
                printf("%s\t%s\t%s\n", o->name, o->alias ? o->alias : "-",
                       o->value ? o->value : "-");
}

int gw_cli_next(gw_cli_parse *p)
{
    gw_error err;
    gw_error_clear(&err);
    int id = gw__opt_next(&p->scan, &err);
    if (id == GW_OPT_ERROR) {
        fprintf(stderr, "gpuwatch %s: %s (see 'gpuwatch %s --help')\n", p->cmd, err.message,
                p->cmd);
        return GW_CLI_EXIT_USAGE;
    }
    if (id == GW_CLI_ID_HELP) {
        p->usage(stdout);
        return GW_CLI_EXIT_OK;
    }
    if (id == GW_CLI_ID_LIST) {
        list_options(p);
        return GW_CLI_EXIT_OK;
    }
    return id;
}

int gw_cli_bad_value(const gw_cli_parse *p, const gw_error *why)
{
    fprintf(stderr, "gpuwatch %s: %s: %s\n", p->cmd, p->scan.opt ? p->scan.opt->name : "?",
            why->message);
    return GW_CLI_EXIT_USAGE;
}

int gw_cli_source_apply(const gw_cli_parse *p, int id, gw_config *cfg)
{
    const char *v = p->scan.value;
    switch (id) {
    case SRC_SOURCES: cfg->sources = v; return 1;
    case SRC_NVML_LIBRARY: cfg->nvml_library = v; return 1;
    case SRC_PROC_ROOT: cfg->proc_root = v; return 1;
    case SRC_SYS_ROOT: cfg->sys_root = v; return 1;
    case SRC_NO_PROCESSES: cfg->processes = false; return 1;
    case SRC_CALL_TIMEOUT: {
        gw_error why;
        uint64_t ms;
        if (gw__parse_uint(v, 1, 600000, &ms, &why) != GW_OK)
            return gw_cli_bad_value(p, &why);
        cfg->call_timeout_ms = (unsigned)ms;
        return 1;
    }
    default: return 0;
    }
}

void gw_cli_config_opts(gw_opt *t, const gw_cli_shorthand *sh, size_t n)
{
    t[0] = (gw_opt){"--config", "-c", "PATH", GW_CLI_O_CONFIG};
    t[1] = (gw_opt){"--set", NULL, "KEY=VALUE", GW_CLI_O_SET};
    t[2] = (gw_opt){"--print-config", NULL, NULL, GW_CLI_O_PRINT_CONFIG};
    for (size_t k = 0; k < n; k++)
        t[3 + k] = (gw_opt){sh[k].flag, NULL, sh[k].value, GW_CLI_O_SHORTHAND + (int)k};
    t[3 + n] = (gw_opt){0};
}

int gw_cli_check_set(const gw_cli_parse *p, const char *v)
{
    const char *eq = strchr(v, '=');
    if (eq && eq != v)
        return 0;
    fprintf(stderr, "gpuwatch %s: --set needs KEY=VALUE, got '%s'\n", p->cmd, v);
    return GW_CLI_EXIT_USAGE;
}
