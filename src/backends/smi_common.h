/* smi_common.h — what the command-line fallback backends (nvidia-smi,
 * rocm-smi, amd-smi) share: strict number parsing of tool output, a
 * printable one-line excerpt of what a tool said, the "last good devices"
 * keeper that turns a failed call into stale devices, and the back-off of a
 * tool that said the hardware is not there.
 *
 * Invariants:
 *  1. Parsers accept exactly the documented text (digits, one optional '.',
 *     optional leading '-' where allowed) and report overflow as failure:
 *     no strtod, no locale, no silent truncation of the integer part.
 *  2. The keeper holds copies of the devices of the last successful sample
 *     and when it was taken; replaying them marks every copy STALE with the
 *     reason, and keeps its original sample time so readers see its age.
 */
#ifndef GW_BACKENDS_SMI_COMMON_H
#define GW_BACKENDS_SMI_COMMON_H

#include "backends/backend.h"
#include "backends/subprocess.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses s[0..len) as a decimal "123" or "123.456" (more fraction digits
 * are truncated) into thousandths: "62.03" -> 62030. allow_negative admits
 * one leading '-'. False for anything else (empty, spaces, "1e3", "0x1",
 * overflow of int64). */
bool gw__smi_parse_milli(const char *s, size_t len, bool allow_negative, int64_t *out);

/* Parses s[0..len) as a plain unsigned decimal integer; false on anything
 * else or overflow. */
bool gw__smi_parse_uint(const char *s, size_t len, uint64_t *out);

/* Copies at most cap-1 bytes of the first non-empty line of s[0..len) to
 * out, with control and non-ASCII bytes replaced by '?' and surrounding
 * spaces trimmed; out is "" when there is none. Returns out. */
char *gw__smi_excerpt(const char *s, size_t len, char *out, size_t cap);

/* Writes into err why a run that returned GW_OK did not end with exit 0
 * (timed out, output too large, killed by a signal), naming the tool and
 * timeout_ms; returns the code (GW_ETIMEDOUT, GW_ERANGE, GW_EIO), or GW_OK
 * (err untouched) when it exited, whatever its exit code. */
int gw__smi_run_failure(const char *tool, const gw__subprocess_result *res, unsigned timeout_ms,
                        gw_error *err);

/* Last good devices of one backend. Zero it to initialise. */
typedef struct gw__smi_keeper {
    gw_device *devices; /* owned copies */
    size_t n;
    /* back-off while the tool says the hardware/driver is absent */
    int64_t retry_at_ns, backoff_ns;
} gw__smi_keeper;

/* Replaces the kept devices with copies of devs[0..n). Returns GW_OK or
 * GW_ENOMEM (the keeper is then empty). */
int gw__smi_keeper_store(gw__smi_keeper *k, const gw_device *devs, size_t n);

/* Appends every kept device, marked GW_DEVICE_STALE with reason, to c,
 * except those whose PCI bus id c already holds. Returns the number added,
 * or -1 when out of memory. */
long gw__smi_keeper_replay(gw__smi_keeper *k, gw__collect *c, const char *reason);

/* Forgets the kept devices (not the back-off). */
void gw__smi_keeper_clear(gw__smi_keeper *k);

/* Starts or doubles (1 s .. 60 s) the absent-hardware back-off from now. */
void gw__smi_keeper_backoff(gw__smi_keeper *k, int64_t now_mono_ns);

/* True while the back-off has not expired. */
bool gw__smi_keeper_waiting(const gw__smi_keeper *k, int64_t now_mono_ns);

/* Ends the back-off (the tool answered). */
void gw__smi_keeper_reset_backoff(gw__smi_keeper *k);

/* Frees what the keeper holds; it may be reused (empty). */
void gw__smi_keeper_release(gw__smi_keeper *k);

/* True when c already holds a device of vendor v; *source gets the name of
 * the source of the first one (borrowed from c, valid until c changes). */
bool gw__smi_collect_has_vendor(gw__collect *c, gw_vendor v, const char **source);

#endif
