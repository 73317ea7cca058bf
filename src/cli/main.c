/* main.c — gpuwatch's entry point: picks the subcommand and hands over.
 * The only place that turns results into a process exit status. */
#include "cli/cli.h"

#include <string.h>

/* One line per subcommand; add new ones here. */
static const gw_cli_command commands[] = {
    {"report", "one-shot report of every GPU, its processes and the host", gw_cmd_report},
    {"serve", "daemon: background sampling, JSON API and Prometheus /metrics", gw_cmd_serve},
    {"place", "where a memory need or model would go on the GPUs (no reservation)", gw_cmd_place},
    {"run", "reserve GPUs for a command, run it there, release when it ends", gw_cmd_run},
    {"progress", "report a job's progress (DONE[/TOTAL]) on a GPU for top and the daemon",
     gw_cmd_progress},
    {"fit", "memory a GGUF model needs under llama.cpp, and the plan that fits", gw_cmd_fit},
    {"top", "live dashboard: GPUs, history, processes, events, job progress", gw_cmd_top},
    {"pool", "OpenAI-compatible front over model servers placed by exact bytes", gw_cmd_pool},
    {"gguf", "metadata and tensors of a GGUF model file", gw_cmd_gguf},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch [--version] [--help] COMMAND [ARGS]\n"
            "\n"
            "GPU resource monitor and VRAM-aware placement engine.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Run 'gpuwatch COMMAND --help' for a command's options.\n"
            "\n"
            "Exit status:\n"
            "  0  success (CPU-only mode included)\n"
            "  1  the command could not do its job (the message says why)\n"
            "  2  bad command line\n"
            "  3  done, but at least one GPU is lost, in error or stale\n"
            "\n"
            "Environment:\n"
            "  GPUWATCH_NVML_LIBRARY  NVML library to load (default libnvidia-ml.so.1)\n"
            "  GPUWATCH_PROC_ROOT     procfs root (default /proc)\n"
            "  GPUWATCH_SYS_ROOT      sysfs root (default /sys)\n"
            "  GPUWATCH_CALL_TIMEOUT_MS  deadline of a fallback CLI call (default 5000)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return GW_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return GW_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("gpuwatch %s\n", GW_VERSION_STRING);
        return GW_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "gpuwatch: unknown command '%s' (see 'gpuwatch --help')\n", cmd);
    return GW_EXIT_USAGE;
}
