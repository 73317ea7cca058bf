/* sysfs.c — see sysfs.h. Stateless helpers; every descriptor they open is
 * handed to the caller. */
#include "backends/sysfs.h"
#include "backends/backend.h"
#include "core/array.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool gw__attr_open(gw__attr *a, int dirfd, const char *rel)
{
    a->fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    return a->fd >= 0;
}

void gw__attr_close(gw__attr *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
}

long gw__attr_read(const gw__attr *a, char *buf, size_t cap)
{
    if (cap == 0)
        return -EINVAL;
    buf[0] = '\0';
    if (a->fd < 0)
        return -ENOENT;
    ssize_t n;
    do
        n = pread(a->fd, buf, cap - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return (long)n;
}

bool gw__attr_u64(const gw__attr *a, uint64_t *out, int *errno_out)
{
    char buf[64];
    long n = gw__attr_read(a, buf, sizeof buf);
    if (errno_out)
        *errno_out = n < 0 ? (int)-n : 0;
    return n > 0 && gw__parse_u64(buf, out);
}

bool gw__attr_i64(const gw__attr *a, int64_t *out, int *errno_out)
{
    char buf[64];
    long n = gw__attr_read(a, buf, sizeof buf);
    if (errno_out)
        *errno_out = n < 0 ? (int)-n : 0;
    return n > 0 && gw__parse_i64(buf, out);
}

bool gw__read_u64_at(int dirfd, const char *rel, uint64_t *out)
{
    char buf[64];
    return gw__read_at(dirfd, rel, buf, sizeof buf) > 0 && gw__parse_u64(buf, out);
}

bool gw__read_i64_at(int dirfd, const char *rel, int64_t *out)
{
    char buf[64];
    return gw__read_at(dirfd, rel, buf, sizeof buf) > 0 && gw__parse_i64(buf, out);
}

bool gw__read_hex_at(int dirfd, const char *rel, uint64_t *out)
{
    char buf[64];
    if (gw__read_at(dirfd, rel, buf, sizeof buf) <= 0)
        return false;
    const char *p = buf;
    while (*p == ' ' || *p == '\t')
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    uint64_t v = 0;
    int digits = 0;
    for (; *p; p++, digits++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            break;
        if (digits >= 16)
            return false;
        v = v * 16 + (uint64_t)d;
    }
    while (*p == '\n' || *p == ' ' || *p == '\r' || *p == '\t')
        p++;
    if (!digits || *p)
        return false;
    *out = v;
    return true;
}

bool gw__read_line_at(int dirfd, const char *rel, char *out, size_t cap)
{
    char buf[512];
    if (cap == 0 || gw__read_at(dirfd, rel, buf, sizeof buf) <= 0)
        return false;
    buf[strcspn(buf, "\n")] = '\0';
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    /* keep printable ASCII only: the text ends up in JSON and terminals */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
            buf[i] = '?';
    if (!n)
        return false;
    gw__strlcpy(out, buf, cap);
    return true;
}

bool gw__exists_at(int dirfd, const char *rel)
{
    struct stat st;
    return fstatat(dirfd, rel, &st, 0) == 0;
}

/* "cardN" exactly (not "card0-DP-1", not "renderD128"); N into *out. */
static bool parse_card_name(const char *name, uint32_t *out)
{
    if (strncmp(name, "card", 4) != 0)
        return false;
    uint64_t v;
    const char *p = name + 4;
    if (*p < '0' || *p > '9' || strlen(p) > 6)
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    if (!gw__parse_u64(p, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Basename of the target of dirfd/rel (a symlink) into out[cap]. */
static bool link_basename(int dirfd, const char *rel, char *out, size_t cap)
{
    char target[1024];
    ssize_t n = readlinkat(dirfd, rel, target, sizeof target - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    while (n > 1 && target[n - 1] == '/')
        target[--n] = '\0';
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (!*base)
        return false;
    gw__strlcpy(out, base, cap);
    return true;
}

/* The PCI address of drm_dir/card/device: the basename of the link's target
 * ("../../../0000:03:00.0" as the kernel writes it), else of its canonical
 * path. */
static bool pci_address(const char *drm_dir, const char *card, int cfd, char *out, size_t cap)
{
    char tmp[16];
    if (link_basename(cfd, "device", out, cap) && gw__pci_bus_id_normalize(out, tmp, sizeof tmp))
        return true;
    char path[1024], *real;
    int n = snprintf(path, sizeof path, "%s/%.32s/device", drm_dir, card);
    if (n < 0 || (size_t)n >= sizeof path || !(real = realpath(path, NULL)))
        return false;
    const char *base = strrchr(real, '/');
    gw__strlcpy(out, base ? base + 1 : real, cap);
    free(real);
    return true;
}

static int card_cmp(const void *a, const void *b)
{
    const gw__drm_card *x = a, *y = b;
    return x->card < y->card ? -1 : x->card > y->card;
}

void gw__drm_cards_free(gw__drm_card *cards, size_t n)
{
    if (!cards)
        return;
    for (size_t i = 0; i < n; i++) {
        if (cards[i].card_dirfd >= 0)
            close(cards[i].card_dirfd);
        if (cards[i].dev_dirfd >= 0)
            close(cards[i].dev_dirfd);
    }
    free(cards);
}

int gw__drm_cards_list(const char *sys_root, uint32_t vendor_id, const char *const *driver_names,
                       gw__drm_card **out, size_t *n_out, gw_error *err)
{
    *out = NULL;
    *n_out = 0;
    char path[640];
    snprintf(path, sizeof path, "%s/class/drm", sys_root);
    int drmfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (drmfd < 0)
        return gw__error_set(err, GW_ENODEV, "no DRM devices: cannot open %s: %s", path,
                             strerror(errno));
    DIR *d = fdopendir(drmfd);
    if (!d) {
        close(drmfd);
        return gw__error_set(err, GW_ENOMEM, "out of memory listing %s", path);
    }
    gw__drm_card *cards = NULL;
    size_t n = 0, cap = 0;
    int rc = GW_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint32_t num;
        if (!parse_card_name(e->d_name, &num))
            continue;
        int cfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cfd < 0)
            continue;
        int dfd = openat(cfd, "device", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        uint64_t vendor = 0, device = 0;
        char bus[64] = "", norm[16];
        if (dfd < 0 || !gw__read_hex_at(dfd, "vendor", &vendor) || vendor != vendor_id ||
            !pci_address(path, e->d_name, cfd, bus, sizeof bus) ||
            !gw__pci_bus_id_normalize(bus, norm, sizeof norm)) {
            if (dfd >= 0)
                close(dfd);
            close(cfd);
            continue;
        }
        char driver[16] = "";
        link_basename(dfd, "driver", driver, sizeof driver);
        bool driver_ok = !driver_names || !driver[0];
        for (size_t k = 0; driver_names && driver_names[k] && !driver_ok; k++)
            driver_ok = strcmp(driver, driver_names[k]) == 0;
        if (!driver_ok) {
            close(dfd);
            close(cfd);
            continue;
        }
        if (GW__ARRAY_RESERVE(cards, cap, n + 1, 256)) {
            close(dfd);
            close(cfd);
            rc = gw__error_set(err, GW_ENOMEM, "out of memory listing %s", path);
            break;
        }
        gw__drm_card *c = &cards[n++];
        memset(c, 0, sizeof *c);
        c->card = num;
        gw__strlcpy(c->pci_bus_id, norm, sizeof c->pci_bus_id);
        c->vendor_id = (uint32_t)vendor;
        if (gw__read_hex_at(dfd, "device", &device) && device <= 0xffff)
            c->device_id = (uint32_t)device;
        gw__strlcpy(c->driver, driver, sizeof c->driver);
        c->card_dirfd = cfd;
        c->dev_dirfd = dfd;
    }
    closedir(d);
    if (rc != GW_OK) {
        gw__drm_cards_free(cards, n);
        return rc;
    }
    if (n > 1)
        qsort(cards, n, sizeof *cards, card_cmp);
    *out = cards;
    *n_out = n;
    return GW_OK;
}

int gw__hwmon_open(int dev_dirfd, const char *want_name)
{
    int hfd = openat(dev_dirfd, "hwmon", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (hfd < 0)
        return -1;
    DIR *d = fdopendir(hfd);
    if (!d) {
        close(hfd);
        return -1;
    }
    int best = -1;
    uint64_t best_n = UINT64_MAX;
    bool best_named = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t num;
        if (strncmp(e->d_name, "hwmon", 5) != 0 || !gw__parse_u64(e->d_name + 5, &num))
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            continue;
        char name[32] = "";
        bool named = want_name && gw__read_line_at(fd, "name", name, sizeof name) &&
                     strcmp(name, want_name) == 0;
        bool better = best < 0 || (named && !best_named) || (named == best_named && num < best_n);
        if (better) {
            if (best >= 0)
                close(best);
            best = fd;
            best_n = num;
            best_named = named;
        } else {
            close(fd);
        }
    }
    closedir(d);
    return best;
}

uint32_t gw__pcie_gen_from_speed(const char *text)
{
    static const struct {
        const char *prefix;
        uint32_t gen;
    } speeds[] = {
        {"2.5 GT/s", 1}, {"5.0 GT/s", 2}, {"5 GT/s", 2},   {"8.0 GT/s", 3},
        {"8 GT/s", 3},   {"16.0 GT/s", 4}, {"32.0 GT/s", 5}, {"64.0 GT/s", 6},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(speeds); i++)
        if (strncmp(text, speeds[i].prefix, strlen(speeds[i].prefix)) == 0)
            return speeds[i].gen;
    return 0;
}

bool gw__driver_version(const char *sys_root, const char *proc_root, const char *driver,
                        char *out, size_t cap)
{
    char path[1100];
    out[0] = '\0';
    snprintf(path, sizeof path, "%s/module/%.32s/version", sys_root, driver);
    if (gw__read_line_at(AT_FDCWD, path, out, cap))
        return true;
    snprintf(path, sizeof path, "%s/sys/kernel/osrelease", proc_root);
    return gw__read_line_at(AT_FDCWD, path, out, cap);
}
