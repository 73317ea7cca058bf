/* host_cpu.c — how `fit`, `place` and `run` show the host CPU an estimate
 * assumed: one human line and one JSON object, the same for every command.
 * Owns: the wording "host CPU: sapphirerapids (AMX, CPU_REPACK)" and the
 * JSON object {variant, detected, buffer_types, host_weights_buffer_types}.
 * Invariant: the text and the JSON name the same buffer types, in
 * llama.cpp's spelling, from gw_est_buffer_types_str. */
#include "cli/host_cpu.h"

#include <stdio.h>
#include <string.h>

char *gw_cli_host_cpu_text(gw_est_cpu_variant v, char *buf, size_t n)
{
    char bufts[64];
    gw_est_buffer_types_str(gw_est_cpu_variant_buffer_types(v), ", ", bufts, sizeof bufts);
    snprintf(buf, n, "%s (%s)%s", gw_est_cpu_variant_name(v),
             bufts[0] ? bufts : v == GW_EST_CPUV_NONE ? "plain CPU buffers" : "no extra buffer types",
             v == gw_est_cpu_variant_host() ? "" : ", given with --host-cpu");
    return buf;
}

static void json_bufts(gw_json *j, unsigned bufts)
{
    char names[64];
    gw_est_buffer_types_str(bufts, ",", names, sizeof names);
    gw__json_array_begin(j);
    for (char *save = NULL, *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save))
        gw__json_string(j, t);
    gw__json_array_end(j);
}

void gw_cli_host_cpu_json(gw_json *j, gw_est_cpu_variant v, unsigned used)
{
    gw__json_object_begin(j);
    gw__json_key(j, "variant");
    gw__json_string(j, gw_est_cpu_variant_name(v));
    gw__json_key(j, "detected");
    gw__json_bool(j, v == gw_est_cpu_variant_host());
    gw__json_key(j, "buffer_types");
    json_bufts(j, gw_est_cpu_variant_buffer_types(v));
    gw__json_key(j, "host_weights_buffer_types");
    json_bufts(j, used);
    gw__json_object_end(j);
}
