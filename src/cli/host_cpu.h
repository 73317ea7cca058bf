/* host_cpu.h — the host CPU line and JSON object of `fit`, `place`, `run`
 * (host_cpu.c). */
#ifndef GW_CLI_HOST_CPU_H
#define GW_CLI_HOST_CPU_H

#include "estimate/estimate.h"
#include "render/json_writer.h"

#include <stddef.h>

/* "sapphirerapids (AMX, CPU_REPACK)" (+ ", given with --host-cpu" when v is
 * not this host's) into buf (n bytes, always terminated); returns buf. */
char *gw_cli_host_cpu_text(gw_est_cpu_variant v, char *buf, size_t n);

/* Writes {"variant", "detected", "buffer_types": the variant's,
 * "host_weights_buffer_types": used (the layout's, GW_EST_BUFT_* bits)}. */
void gw_cli_host_cpu_json(gw_json *j, gw_est_cpu_variant v, unsigned used);

#endif
