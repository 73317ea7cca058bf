/* rocm_smi.h — parsers of AMD's command-line tools' JSON, exposed for the
 * unit tests and the fuzz target; the backends themselves are
 * gw__backend_amd_smi and gw__backend_rocm_smi (registry).
 *
 * rocm-smi --json: one object {"card0": {"Key (unit)": "value", ...}, ...};
 *   every value is a string; unsupported keys are simply missing; a value
 *   "N/A" or "N/A (Secondary die)" is absent. Keys other than cardN
 *   ("system") are ignored.
 * amd-smi metric --json: either a top-level array (ROCm 6.0-6.3) or
 *   {"gpu_data": [...]}; each element {"gpu": N, "usage": {...}, ...} with
 *   leaves {"value": N, "unit": "%"} or "N/A". Numbers may arrive as JSON
 *   numbers or as strings; both are converted. amd-smi's "MB" is MiB.
 * amd-smi list --json: the same two shapes; elements {"gpu": N, "bdf":
 *   "0000:c1:00.0", "uuid": "..."}.
 * amd-smi static --asic --json: the same two shapes; elements {"gpu": N,
 *   "asic": {"market_name": "...", ...}}.
 *
 * Missing keys leave metrics invalid; a present value that is not a number
 * in the expected unit is an error naming the card and the key.
 */
#ifndef GW_BACKENDS_ROCM_SMI_H
#define GW_BACKENDS_ROCM_SMI_H

#include "core/model.h"

#include <stddef.h>
#include <stdint.h>

#define GW__ROCM_MAX_GPUS 256

/* One element of `amd-smi list --json`. */
typedef struct gw__amdsmi_list_entry {
    uint32_t gpu;
    char bdf[32];
    char uuid[96];
    char name[96]; /* from amd-smi static; "" when unknown */
} gw__amdsmi_list_entry;

/* Each parser reads text[0..len) and returns GW_OK with a new array in *out
 * (caller frees; NULL when empty) and its length in *n, or GW_EPARSE /
 * GW_ERANGE / GW_ENOMEM with err naming what was wrong (*out NULL, *n 0).
 * Devices come with vendor AMD, source = tool name, source_index, state ok
 * and every metric the input gave. */
int gw__rocmsmi_parse(const char *text, size_t len, gw_device **out, size_t *n, gw_error *err);
int gw__amdsmi_parse_metric(const char *text, size_t len, gw_device **out, size_t *n,
                            gw_error *err);
int gw__amdsmi_parse_list(const char *text, size_t len, gw__amdsmi_list_entry **out, size_t *n,
                          gw_error *err);

/* Reads `amd-smi static --asic --json` and sets the name of every entry of
 * list[0..n) whose gpu index it describes. GW_OK, or GW_EPARSE with err set
 * (then no entry was changed). */
int gw__amdsmi_parse_static_names(const char *text, size_t len, gw__amdsmi_list_entry *list,
                                  size_t n, gw_error *err);

#endif
