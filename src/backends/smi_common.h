/* smi_common.h — what the command-line fallback backends (nvidia-smi,
 * rocm-smi, amd-smi) share: strict number parsing of tool output, a
 * printable one-line excerpt of what a tool said, the "last good devices"
 * keeper that turns a failed call into stale devices, the back-off of a
 * tool that said the hardware is not there, and the steps of one sample
 * that do not depend on the tool (gw__smi_source: when to run, absent,
 * failed, add the devices, status).
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

/* What every CLI fallback backend keeps between samples: its children's
 * reaper, the last good devices and the absent-hardware back-off, and the
 * status of the last sample. Embedded in the backend's state; zero it, then
 * set tool (a static string) and vendor. One sample goes:
 *   gw__smi_source_begin -> run the tool and parse ->
 *   gw__smi_source_absent | gw__smi_source_failed | gw__smi_source_add. */
typedef struct gw__smi_source {
    const char *tool; /* "nvidia-smi", "amd-smi", "rocm-smi" */
    gw_vendor vendor;
    gw__reaper reaper;
    gw__smi_keeper keep;
    /* status of the last sample */
    gw_source_state state;
    int error;
    char message[384];
    uint64_t calls;
    /* why the tool said the GPUs are absent, repeated during the back-off */
    int unavail_error;
    char unavail_message[384];
} gw__smi_source;

/* Starts a sample: resets the status, reaps finished children and decides
 * whether the tool runs this round. False when it must not (the status then
 * says why: another source already reports this vendor's GPUs, or the
 * absent-hardware back-off is running, its reason repeated). *now_mono_ns
 * gets the time the back-off is measured from. */
bool gw__smi_source_begin(gw__smi_source *s, gw__collect *c, int64_t *now_mono_ns);

/* The tool said the hardware or driver is not there (rc, why): forgets the
 * kept devices, starts or doubles the back-off, and marks the source
 * unavailable with that reason. */
void gw__smi_source_absent(gw__smi_source *s, int rc, const char *why, int64_t now_mono_ns);

/* A call failed otherwise (rc, err->message): with devices kept from an
 * earlier sample they are added to c marked stale with that reason and the
 * source is degraded (GW_OK); without, rc is returned. GW_ENOMEM when the
 * collector is full. */
int gw__smi_source_failed(gw__smi_source *s, gw__collect *c, int rc, gw_error *err);

/* A good answer: ends the back-off, adds devs[0..n) to c (taking ownership
 * of devs, freed here) except those whose PCI bus id c already holds (said
 * in the status message when it is free), stamps them now, and keeps copies
 * for later failures. *first / *added get where the added devices start in
 * c and how many there are. GW_OK or GW_ENOMEM. */
int gw__smi_source_add(gw__smi_source *s, gw__collect *c, gw_device *devs, size_t n,
                       size_t *first, size_t *added, gw_error *err);

/* Fills a source status from s (state, error, message, calls). */
void gw__smi_source_status(const gw__smi_source *s, gw_source_status *st);

/* Reaps or abandons children (waiting up to grace_ms) and frees the kept
 * devices. */
void gw__smi_source_release(gw__smi_source *s, unsigned grace_ms);

#endif
