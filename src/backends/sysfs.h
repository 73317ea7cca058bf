/* sysfs.h — cheap, bounded reads of sysfs attributes and the DRM card list,
 * shared by the amdgpu and Intel backends (gw__ tier).
 *
 * Owns: nothing global. A gw__attr is one attribute file kept open between
 * samples and re-read with pread() at offset 0 (sysfs regenerates the value on
 * every read from offset 0), so a sample costs one system call per value
 * instead of open + read + read + close. A gw__drm_card describes one
 * /sys/class/drm/cardN and holds directory descriptors the caller closes with
 * gw__drm_cards_free().
 *
 * Invariants:
 *  1. Every read is bounded by the caller's buffer and NUL-terminated; every
 *     number is parsed with overflow checks; garbage yields "absent", never a
 *     crash or a made-up value.
 *  2. Paths are read only below the sys root given to gw__drm_cards_list()
 *     (the test seam); symlinks are followed as the kernel lays them out
 *     (class/drm/cardN -> devices/.../0000:03:00.0/drm/cardN, cardN/device ->
 *     the PCI function folder).
 *  3. Nothing here ever opens pcie_bw (reading it sleeps 1 s in amdgpu).
 */
#ifndef GW_BACKENDS_SYSFS_H
#define GW_BACKENDS_SYSFS_H

#include "core/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One attribute held open; fd < 0 means absent. */
typedef struct gw__attr {
    int fd;
} gw__attr;

#define GW__ATTR_INIT {-1}

/* Opens dirfd/rel read-only and keeps it. Returns false (a->fd = -1) when the
 * file is absent or unreadable. */
bool gw__attr_open(gw__attr *a, int dirfd, const char *rel);

/* Closes the attribute (absent is a no-op) and marks it absent. */
void gw__attr_close(gw__attr *a);

/* Re-reads the whole value (at most cap-1 bytes) from offset 0 into buf,
 * NUL-terminated. Returns the byte count or a negative errno (-ENOENT when
 * absent). */
long gw__attr_read(const gw__attr *a, char *buf, size_t cap);

/* Reads one unsigned / signed decimal integer. On failure returns false and,
 * when errno_out is not NULL, stores the positive errno of the read (0 when
 * the text was not a number). */
bool gw__attr_u64(const gw__attr *a, uint64_t *out, int *errno_out);
bool gw__attr_i64(const gw__attr *a, int64_t *out, int *errno_out);

/* One-shot reads relative to a directory descriptor (open, read, close);
 * gw__read_at itself is in core/util.h. */
bool gw__read_u64_at(int dirfd, const char *rel, uint64_t *out);
bool gw__read_i64_at(int dirfd, const char *rel, int64_t *out);
/* Hexadecimal with optional 0x prefix ("0x1002\n"). */
bool gw__read_hex_at(int dirfd, const char *rel, uint64_t *out);
/* First line of the file, trailing whitespace trimmed, truncated to cap-1;
 * false when absent or empty. */
bool gw__read_line_at(int dirfd, const char *rel, char *out, size_t cap);

/* True when dirfd/rel exists (no read: safe for files like pcie_bw). */
bool gw__exists_at(int dirfd, const char *rel);

/* One DRM card: /sys/class/drm/cardN. */
typedef struct gw__drm_card {
    uint32_t card;          /* N of cardN */
    char pci_bus_id[16];    /* "0000:03:00.0", from the device link's target */
    uint32_t vendor_id;     /* device/vendor */
    uint32_t device_id;     /* device/device */
    char driver[16];        /* basename of device/driver; empty when unknown */
    int card_dirfd;         /* the cardN folder */
    int dev_dirfd;          /* the PCI function folder (cardN/device) */
} gw__drm_card;

/* Lists sys_root/class/drm/cardN entries whose device/vendor equals vendor_id
 * and, when driver_names is not NULL, whose driver is one of the
 * NULL-terminated names (a card without a driver link is kept). Sorted by N.
 * On success *out (caller frees with gw__drm_cards_free) and *n are set; zero
 * cards is success with *out NULL. Errors: GW_ENOMEM; GW_ENODEV when
 * sys_root/class/drm cannot be opened (message names the path). */
int gw__drm_cards_list(const char *sys_root, uint32_t vendor_id, const char *const *driver_names,
                       gw__drm_card **out, size_t *n, gw_error *err);

/* Closes the cards' descriptors and frees the array. NULL is a no-op. */
void gw__drm_cards_free(gw__drm_card *cards, size_t n);

/* Opens the hwmon folder of a device (dev_dirfd/hwmon/hwmonN): the one whose
 * "name" file equals want_name when there is one, else the lowest N. Returns
 * a directory descriptor the caller closes, or -1 when there is none. */
int gw__hwmon_open(int dev_dirfd, const char *want_name);

/* Version of a kernel driver: sys_root/module/DRIVER/version when the
 * module has one (out-of-tree builds such as ROCm's amdgpu-dkms), else the
 * kernel release from proc_root/sys/kernel/osrelease (an in-tree driver is
 * the kernel's). False (out empty) when neither is readable. */
bool gw__driver_version(const char *sys_root, const char *proc_root, const char *driver,
                        char *out, size_t cap);

/* PCIe generation for a sysfs link speed ("16.0 GT/s PCIe"); 0 if unknown. */
uint32_t gw__pcie_gen_from_speed(const char *text);

#endif
