/* gpu_select.h — `--id GPU[,GPU]`: which GPUs a command shows, named the
 * way nvidia-smi's `-i` names them.
 *
 * Owns: the grammar of an id list, the match of an id against a snapshot's
 * devices, and a filtered view of a snapshot holding only the GPUs named.
 *
 * An id is one of (decided by its shape, never by trying each meaning):
 *   - an index: DIGITS, the GPU's `index` in the report ("0", "7");
 *   - a PCI bus id: [DOMAIN:]BUS:DEVICE[.FUNCTION] in hex, compared as
 *     numbers, so "07:00.0", "0000:07:00.0" (lspci) and "00000000:07:00.0"
 *     (nvidia-smi) name the same GPU; a missing function is 0;
 *   - a UUID: [A-Za-z0-9][A-Za-z0-9_-]*, not all digits, compared without
 *     regard to case ("GPU-5e1c...", "MIG-...").
 * Anything else ("", "-1", "1.5", "a b") is a syntax error. A list holds
 * 1..GW_GPU_IDS_MAX ids separated by single commas.
 */
#ifndef GW_CLI_GPU_SELECT_H
#define GW_CLI_GPU_SELECT_H

#include "core/model.h"

#define GW_GPU_IDS_MAX 64
#define GW_GPU_ID_LEN 96 /* longest id, NUL included */

/* Checks the syntax of list (borrowed). GW_OK, or GW_EINVAL with
 * err->message naming the first bad id ("'x y' is not a GPU index, UUID or
 * PCI bus id"), in core/parse.h's style (the caller prefixes the option). */
int gw__gpu_ids_check(const char *list, gw_error *err);

/* Fills *view with snap's devices that match an id of list (in snap's
 * order, each once) and the processes on them; everything else (sources,
 * host, times) is borrowed from snap, which must outlive the view. A
 * process keeps its device_index: the GPU's index, as the view's devices
 * keep theirs. The view owns its devices and processes arrays: release it
 * with gw__gpu_view_release, never gw_snapshot_release.
 * Fails with *view untouched: GW_EINVAL when an id matches no GPU
 * (err->message: "no GPU '3' here (GPUs: 0..1)"; list must have passed
 * gw__gpu_ids_check), GW_ENOMEM. */
int gw__gpu_view_init(gw_snapshot *view, const gw_snapshot *snap, const char *list,
                      gw_error *err);

/* Frees what gw__gpu_view_init allocated; the view is then empty. */
void gw__gpu_view_release(gw_snapshot *view);

#endif
