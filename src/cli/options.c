/* options.c — parsing of the options shared by every command that reads the
 * machine (sources, library path, roots). */
#include "cli/cli.h"
#include "core/util.h"

#include <stddef.h>
#include <string.h>

const char gw_cli_source_options_help[] =
    "  --sources LIST        only these sources, comma-separated (nvml,host,...)\n"
    "  --nvml-library PATH   NVML library to load (env GPUWATCH_NVML_LIBRARY;\n"
    "                        default libnvidia-ml.so.1)\n"
    "  --proc-root DIR       read procfs below DIR (env GPUWATCH_PROC_ROOT; /proc)\n"
    "  --sys-root DIR        read sysfs below DIR (env GPUWATCH_SYS_ROOT; /sys)\n"
    "  --call-timeout MS     deadline of one nvidia-smi/amd-smi/rocm-smi call\n"
    "                        (env GPUWATCH_CALL_TIMEOUT_MS; default 5000)\n"
    "  --no-processes        do not read per-process GPU use\n";

int gw_cli_source_option(int argc, char **argv, int *i, gw_config *cfg)
{
    static const struct {
        const char *flag;
        size_t offset;
    } valued[] = {
        {"--sources", offsetof(gw_config, sources)},
        {"--nvml-library", offsetof(gw_config, nvml_library)},
        {"--proc-root", offsetof(gw_config, proc_root)},
        {"--sys-root", offsetof(gw_config, sys_root)},
    };
    const char *arg = argv[*i];
    if (strncmp(arg, "--call-timeout", 14) == 0 && (arg[14] == '\0' || arg[14] == '=')) {
        const char *v = arg[14] == '=' ? arg + 15 : (*i + 1 < argc ? argv[*i + 1] : NULL);
        uint64_t ms;
        if (!v || !gw__parse_u64(v, &ms) || ms == 0 || ms > 600000) {
            fprintf(stderr, "gpuwatch: --call-timeout needs milliseconds (1..600000)\n");
            return -1;
        }
        cfg->call_timeout_ms = (unsigned)ms;
        *i += arg[14] == '=' ? 1 : 2;
        return 1;
    }
    if (strcmp(arg, "--no-processes") == 0) {
        cfg->processes = false;
        (*i)++;
        return 1;
    }
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
        size_t n = strlen(valued[k].flag);
        if (strncmp(arg, valued[k].flag, n) != 0)
            continue;
        const char *value;
        if (arg[n] == '=') {
            value = arg + n + 1;
            (*i)++;
        } else if (arg[n] == '\0') {
            if (*i + 1 >= argc) {
                fprintf(stderr, "gpuwatch: option %s needs a value\n", valued[k].flag);
                return -1;
            }
            value = argv[*i + 1];
            *i += 2;
        } else {
            continue;
        }
        *(const char **)((char *)cfg + valued[k].offset) = value;
        return 1;
    }
    return 0;
}
