/* fdinfo_sweep.c — what the DRM fdinfo sweep and one AMD/Intel sample cost.
 *
 *   fdinfo_sweep [RUNS [PROC]]     (default 20; PROC: also time a first
 *                                  look at a real procfs, e.g. /proc)
 *
 * Builds, in a temporary folder, a /proc with 2,000 processes and 20,000
 * descriptors (10 each: tty, pipes, sockets, files; 100 of the processes
 * hold a DRM render node, 40 of them two, the fd symlinks pointing at
 * /dev/dri/renderD* as the kernel writes them) and a /sys with 4 AMD
 * (amdgpu) and 2 Intel (xe, i915) GPUs laid out as the kernel does,
 * including the DRM client lists a root process reads from debugfs
 * (sys/kernel/debug/dri/<pci>/clients, naming the 100 GPU processes).
 * Prints, in milliseconds (median, 10th/90th percentile, minimum), once with
 * the client lists (root: only the processes they name are listed at once)
 * and once without (not root, or no debugfs: every fd folder is listed):
 *   cold sweep           a new sweep object's first sweep: every pid new
 *   unchanged re-sweep   the next sweep, nothing changed and no rescan due:
 *                        readdir(/proc) + the known DRM fdinfo re-read
 *   syscall floor        (without lists) the same first look done with bare
 *                        system calls (open, getdents, close, readlinkat):
 *                        what no design that lists every fd folder can beat
 *   steady 1 s sweeps    sweeps 1 s apart (virtual clock), minutes 3-5:
 *                        re-sweeps plus the per-pid back-off rescans
 *   full sample          gw_monitor_sample over sources amdgpu,intel on the
 *                        6 GPUs with a small /proc (the 6 GPU processes),
 *                        and the same with the 2,000-process /proc
 * Targets (issue 4): sweep <= 10 ms, unchanged re-sweep <= 2 ms, full
 * sample <= 1 ms. The fixture lives on the temp folder's filesystem, so the
 * figures are those of its syscalls, not of procfs.
 */
#include "backends/fdinfo.h"
#include "core/model.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NPROC 2000
#define FDS_PER_PROC 10
#define SEC 1000000000ll

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void mkparents(char *path)
{
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
}

static void put(const char *text, const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    mkparents(path);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void lnk(const char *target, const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    mkparents(path);
    if (symlink(target, path) != 0) {
        perror(path);
        exit(1);
    }
}

static const char *PDEVS[6] = {"0000:03:00.0", "0000:23:00.0", "0000:43:00.0",
                               "0000:63:00.0", "0000:83:00.0", "0000:00:02.0"};

static void make_process(const char *proc, unsigned pid, int drm_fds)
{
    char t[1024];
    snprintf(t, sizeof t,
             "%u (p%u) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %u 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
             "0 0 17 0 0 0 0 0 0\n",
             pid, pid, 1000 + pid);
    put(t, "%s/%u/stat", proc, pid);
    snprintf(t, sizeof t, "p%u\n", pid);
    put(t, "%s/%u/comm", proc, pid);
    put("Name:\tp\nUid:\t1000\t1000\t1000\t1000\n", "%s/%u/status", proc, pid);
    put("p\0", "%s/%u/cmdline", proc, pid);
    static const char *plain[] = {"/dev/pts/0", "/dev/pts/0", "/dev/pts/0", "pipe:[1001]",
                                  "pipe:[1002]", "socket:[2001]", "socket:[2002]",
                                  "/var/log/app.log", "anon_inode:[eventpoll]", "/dev/null"};
    for (int fd = 0; fd < FDS_PER_PROC; fd++) {
        int card = fd >= FDS_PER_PROC - drm_fds ? (int)((pid + (unsigned)fd) % 6) : -1;
        if (card < 0) {
            lnk(plain[fd], "%s/%u/fd/%d", proc, pid, fd);
            put("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t77\n", "%s/%u/fdinfo/%d", proc, pid, fd);
            continue;
        }
        char target[32];
        snprintf(target, sizeof target, "/dev/dri/renderD%d", 128 + card);
        lnk(target, "%s/%u/fd/%d", proc, pid, fd);
        const char *drv = card < 4 ? "amdgpu" : card == 4 ? "xe" : "i915";
        if (card < 4)
            snprintf(t, sizeof t,
                     "pos:\t0\nflags:\t02100002\nmnt_id:\t24\ndrm-driver:\t%s\ndrm-pdev:\t%s\n"
                     "drm-client-id:\t%u\npasid:\t%u\ndrm-memory-vram:\t%u KiB\n"
                     "drm-memory-gtt: \t2048 KiB\ndrm-memory-cpu: \t0 KiB\n"
                     "amd-memory-visible-vram:\t0 KiB\ndrm-engine-gfx:\t%u000 ns\n"
                     "drm-engine-compute:\t%u000 ns\ndrm-engine-dma:\t0 ns\n",
                     drv, PDEVS[card], pid * 16 + (unsigned)fd, 32768 + pid, 4096 * (pid % 64 + 1),
                     pid, pid / 2);
        else
            snprintf(t, sizeof t,
                     "pos:\t0\nflags:\t02100002\nmnt_id:\t24\ndrm-driver:\t%s\ndrm-pdev:\t%s\n"
                     "drm-client-id:\t%u\ndrm-total-%s:\t%u KiB\ndrm-resident-%s:\t%u KiB\n"
                     "drm-engine-render:\t%u000 ns\ndrm-engine-copy:\t0 ns\n"
                     "drm-cycles-rcs:\t%u\ndrm-total-cycles-rcs:\t%u000\n",
                     drv, PDEVS[card], pid * 16 + (unsigned)fd, card == 4 ? "vram0" : "system0",
                     8192u, card == 4 ? "vram0" : "system0", 4096u, pid, pid, pid);
        put(t, "%s/%u/fdinfo/%d", proc, pid, fd);
    }
}

static void make_host(const char *proc)
{
    put("MemTotal:  65536000 kB\nMemAvailable: 50000000 kB\n", "%s/meminfo", proc);
}

/* One PCI GPU under sys: device folder, driver link, drm/cardN, class link. */
static void make_gpu(const char *sys, int card, const char *bus, const char *vendor,
                     const char *driver, int amd)
{
    char dev[512], t[128];
    snprintf(dev, sizeof dev, "%s/devices/pci0000:00/%s", sys, bus);
    put(vendor, "%s/vendor", dev);
    put(amd ? "0x744c\n" : card == 4 ? "0x56a0\n" : "0x46a6\n", "%s/device", dev);
    snprintf(t, sizeof t, "../../../bus/pci/drivers/%s", driver);
    lnk(t, "%s/driver", dev);
    snprintf(t, sizeof t, "../../../%s", bus);
    lnk(t, "%s/drm/card%d/device", dev, card);
    snprintf(t, sizeof t, "../../devices/pci0000:00/%s/drm/card%d", bus, card);
    lnk(t, "%s/class/drm/card%d", sys, card);
    if (amd) {
        static const char *files[][2] = {
            {"mem_info_vram_total", "25753026560\n"}, {"mem_info_vram_used", "8589934592\n"},
            {"mem_info_vis_vram_total", "25753026560\n"}, {"mem_info_vis_vram_used", "1073741824\n"},
            {"mem_info_gtt_total", "16777216000\n"}, {"mem_info_gtt_used", "52428800\n"},
            {"gpu_busy_percent", "37\n"}, {"mem_busy_percent", "12\n"},
            {"pp_dpm_sclk", "0: 500Mhz\n1: 1801Mhz *\n2: 2526Mhz\n"},
            {"pp_dpm_mclk", "0: 96Mhz\n1: 1249Mhz *\n"}, {"unique_id", "5a1c0e2fb8e31d2a\n"},
            {"current_link_speed", "16.0 GT/s PCIe\n"}, {"current_link_width", "16\n"},
            {"max_link_speed", "16.0 GT/s PCIe\n"}, {"max_link_width", "16\n"},
            {"hwmon/hwmon1/name", "amdgpu\n"}, {"hwmon/hwmon1/temp1_input", "45000\n"},
            {"hwmon/hwmon1/temp1_label", "edge\n"}, {"hwmon/hwmon1/temp1_crit", "100000\n"},
            {"hwmon/hwmon1/temp2_input", "58000\n"}, {"hwmon/hwmon1/temp2_label", "junction\n"},
            {"hwmon/hwmon1/temp3_input", "62000\n"}, {"hwmon/hwmon1/temp3_label", "mem\n"},
            {"hwmon/hwmon1/freq1_input", "1801000000\n"},
            {"hwmon/hwmon1/freq2_input", "1249000000\n"},
            {"hwmon/hwmon1/power1_average", "85000000\n"},
            {"hwmon/hwmon1/power1_cap", "303000000\n"}, {"hwmon/hwmon1/fan1_input", "1200\n"},
            {"hwmon/hwmon1/pwm1", "76\n"},
        };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
            put(files[i][1], "%s/%s", dev, files[i][0]);
    } else if (card == 4) {
        put("17179869184\n", "%s/tile0/physical_vram_size_bytes", dev);
        put("2100\n", "%s/tile0/gt0/freq0/act_freq", dev);
        put("2400\n", "%s/tile0/gt0/freq0/max_freq", dev);
        put("xe\n", "%s/hwmon/hwmon9/name", dev);
        put("48000\n", "%s/hwmon/hwmon9/temp2_input", dev);
        put("pkg\n", "%s/hwmon/hwmon9/temp2_label", dev);
        put("123456789012\n", "%s/hwmon/hwmon9/energy1_input", dev);
        put("225000000\n", "%s/hwmon/hwmon9/power1_max", dev);
    } else {
        put("350\n", "%s/drm/card%d/gt_act_freq_mhz", dev, card);
        put("1400\n", "%s/drm/card%d/gt_max_freq_mhz", dev, card);
    }
}

/* The kernel's DRM client lists under sys/kernel/debug/dri (the layout of
 * kernels with per-device folders: one folder per PCI address, the minor
 * numbers as links to it), naming every process that holds each GPU: those
 * of the big /proc and of the small one. */
static void make_client_lists(const char *sys)
{
    static char text[6][65536];
    size_t len[6];
    for (int c = 0; c < 6; c++)
        len[c] = (size_t)snprintf(text[c], sizeof text[c], "%20s %5s %3s master a %5s %10s %*s %20s\n",
                                  "command", "tgid", "dev", "uid", "magic", 64, "name", "id");
    unsigned id = 3;
    for (unsigned k = 1; k <= NPROC + 6; k++) {
        unsigned pid = k <= NPROC ? k : 5000 + (k - NPROC); /* the small /proc's 5001..5006 */
        int drm = pid > NPROC ? 1 : pid % 20 == 0 ? (pid % 40 == 0 ? 2 : 1) : 0;
        for (int fd = FDS_PER_PROC - drm; fd < FDS_PER_PROC; fd++) {
            int c = (int)((pid + (unsigned)fd) % 6);
            len[c] += (size_t)snprintf(text[c] + len[c], sizeof text[c] - len[c],
                                       "%20s %5u %3d   n    y  1000          0 %*s %20u\n", "p",
                                       pid, 128 + c, 64, "<unset>", id++);
        }
    }
    for (int c = 0; c < 6; c++) {
        put(text[c], "%s/kernel/debug/dri/%s/clients", sys, PDEVS[c]);
        lnk(PDEVS[c], "%s/kernel/debug/dri/%d", sys, c);
        lnk(PDEVS[c], "%s/kernel/debug/dri/%d", sys, 128 + c);
    }
}

/* The syscall floor of a first look: for every pid, open PID/fd, one
 * getdents, close, and one readlinkat per entry, with no bookkeeping. */
static double floor_ms(const char *proc)
{
    double a = now_ms();
    int pfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char buf[8192], path[32], target[64];
    for (unsigned pid = 1; pid <= NPROC; pid++) {
        snprintf(path, sizeof path, "%u/fd", pid);
        int dfd = openat(pfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            continue;
        ssize_t n = getdents64(dfd, buf, sizeof buf);
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] != '.')
                (void)!readlinkat(dfd, d->d_name, target, sizeof target);
        }
        close(dfd);
    }
    close(pfd);
    return now_ms() - a;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *t, int n, double target)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    printf("%-34s median %8.3f ms  p10 %8.3f  p90 %8.3f  min %8.3f  (%d runs)", what, t[n / 2],
           t[n / 10], t[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1], t[0], n);
    if (target > 0)
        printf("  target <= %.0f ms: %s", target, t[n / 2] <= target ? "met" : "NOT met");
    printf("\n");
}

static double sample_ms(gw_monitor *m)
{
    gw_snapshot *s = NULL;
    gw_error err;
    double t0 = now_ms();
    if (gw_monitor_sample(m, &s, &err) != GW_OK) {
        fprintf(stderr, "sample: %s\n", err.message);
        exit(1);
    }
    double t = now_ms() - t0;
    if (s->n_devices != 6) {
        fprintf(stderr, "expected 6 devices, got %zu\n", s->n_devices);
        exit(1);
    }
    gw_snapshot_release(s);
    return t;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 20;
    if (runs < 3)
        runs = 3;
    char root[] = "/tmp/gw_fdinfo_bench_XXXXXX";
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    char proc[256], small[256], sys[256];
    snprintf(proc, sizeof proc, "%s/proc", root);
    snprintf(small, sizeof small, "%s/proc-small", root);
    snprintf(sys, sizeof sys, "%s/sys", root);
    double t0 = now_ms();
    int gpu_procs = 0, drm_fds = 0;
    for (unsigned pid = 1; pid <= NPROC; pid++) {
        int drm = pid % 20 == 0 ? (pid % 40 == 0 ? 2 : 1) : 0; /* 100 GPU processes */
        gpu_procs += drm > 0;
        drm_fds += drm;
        make_process(proc, pid, drm);
    }
    for (unsigned pid = 1; pid <= 6; pid++)
        make_process(small, 5000 + pid, 1);
    make_host(proc);
    make_host(small);
    for (int i = 0; i < 4; i++) {
        char bus[32];
        snprintf(bus, sizeof bus, "%s", PDEVS[i]);
        make_gpu(sys, i, bus, "0x1002\n", "amdgpu", 1);
    }
    make_gpu(sys, 4, PDEVS[4], "0x8086\n", "xe", 0);
    make_gpu(sys, 5, PDEVS[5], "0x8086\n", "i915", 0);
    make_client_lists(sys);
    printf("fixture: %d processes, %d fds (%d DRM fds in %d processes), 4 AMD + 2 Intel GPUs; "
           "built in %.0f ms under %s\n",
           NPROC, NPROC * FDS_PER_PROC, drm_fds, gpu_procs, now_ms() - t0, root);

    double *t = calloc((size_t)(runs > 120 ? runs : 120), sizeof *t);
    gw_error err;
    unsigned all = GW__DRM_AMDGPU | GW__DRM_I915 | GW__DRM_XE;
    char debugfs[300];
    snprintf(debugfs, sizeof debugfs, "%s/kernel/debug", sys);
    /* mode 0: root with debugfs, the DRM client lists name the processes to
     * list; mode 1: no lists (not root, no debugfs): every fd folder */
    const char *mode_name[2] = {"with DRM client lists (root)", "without client lists"};
    gw__fdinfo_opts o = {.drivers = all};
    for (int mode = 0; mode < 2; mode++) {
        o.debugfs_root = mode == 0 ? debugfs : NULL;
        printf("\n-- %s\n", mode_name[mode]);
        /* cold sweeps: a fresh object each time */
        for (int i = 0; i < runs; i++) {
            gw__fdinfo *f;
            if (gw__fdinfo_open(&f, proc, &o, &err) != GW_OK) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
            double a = now_ms();
            gw__fdinfo_sweep(f, 100 * SEC, &err);
            t[i] = now_ms() - a;
            if (i == 0) {
                const gw__fdinfo_stats *st = gw__fdinfo_get_stats(f);
                printf("cold sweep found %u pids (%u named by %u client lists), listed %u fd "
                       "folders, %u DRM fds, %u clients, %zu (pid, GPU) usages, %llu syscalls\n",
                       st->pids, st->pids_hinted, st->client_lists, st->pids_listed, st->drm_fds,
                       st->clients, gw__fdinfo_usage_count(f), (unsigned long long)st->syscalls);
            }
            gw__fdinfo_close(f);
        }
        report("cold sweep (all pids new)", t, runs, 10);
        if (mode == 1) {
            for (int i = 0; i < runs; i++)
                t[i] = floor_ms(proc);
            report("  syscall floor of listing every fd", t, runs, 0);
        }

        gw__fdinfo *f;
        gw__fdinfo_open(&f, proc, &o, &err);
        gw__fdinfo_sweep(f, 100 * SEC, &err);
        for (int i = 0; i < runs; i++) {
            double a = now_ms();
            gw__fdinfo_sweep(f, 100 * SEC + 1000 * (i + 1), &err);
            t[i] = now_ms() - a;
        }
        printf("unchanged re-sweep: %llu syscalls, %u fd folders listed\n",
               (unsigned long long)gw__fdinfo_get_stats(f)->syscalls,
               gw__fdinfo_get_stats(f)->pids_listed);
        report("unchanged re-sweep", t, runs, 2);
        /* 1 s sweeps for 5 virtual minutes; the back-off (1 s doubling to
         * 30 s) settles after the first ~60 s: the last 120 sweeps are the
         * steady state */
        double sum = 0;
        unsigned listed = 0;
        for (int i = 0; i < 300; i++) {
            double a = now_ms();
            gw__fdinfo_sweep(f, (101 + i) * SEC, &err);
            double dt = now_ms() - a;
            if (i >= 180) {
                t[i - 180] = dt;
                sum += dt;
                listed += gw__fdinfo_get_stats(f)->pids_listed;
            }
        }
        printf("steady 1 s sweeps (minutes 3-5): mean %.3f ms per sweep, %.1f fd folders listed "
               "per sweep\n",
               sum / 120, listed / 120.0);
        report("steady 1 s sweeps", t, 120, 0);
        gw__fdinfo_close(f);
    }
    printf("\n");

    const char *roots[2] = {small, proc};
    const char *names[2] = {"full sample, 6 GPUs, small /proc", "full sample, 2,000-pid /proc"};
    for (int k = 0; k < 2; k++) {
        gw_config cfg;
        gw_config_init(&cfg);
        cfg.sys_root = sys;
        cfg.proc_root = roots[k];
        cfg.sources = "amdgpu,intel";
        gw_monitor *m;
        if (gw_monitor_open(&m, &cfg, &err) != GW_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        sample_ms(m); /* opens the sources and does the cold sweep */
        for (int i = 0; i < runs; i++)
            t[i] = sample_ms(m);
        report(names[k], t, runs, k == 0 ? 1 : 0);
        gw_monitor_close(m);
    }
    gw_config cfg;
    gw_config_init(&cfg);
    cfg.sys_root = sys;
    cfg.proc_root = small;
    cfg.sources = "amdgpu,intel";
    cfg.processes = false;
    gw_monitor *m;
    gw_monitor_open(&m, &cfg, &err);
    sample_ms(m);
    for (int i = 0; i < runs; i++)
        t[i] = sample_ms(m);
    report("full sample, sysfs only", t, runs, 1);
    gw_monitor_close(m);
    if (argc > 2) {
        /* the same first look on a real procfs (argv[2]), with the real
         * client lists when debugfs can be read */
        o.debugfs_root = "/sys/kernel/debug";
        for (int i = 0; i < runs; i++) {
            gw__fdinfo *g;
            if (gw__fdinfo_open(&g, argv[2], &o, &err) != GW_OK) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
            double a = now_ms();
            gw__fdinfo_sweep(g, 100 * SEC, &err);
            t[i] = now_ms() - a;
            if (i == 0)
                printf("%s: %u pids, %u client lists, %u fd folders listed, %llu syscalls in "
                       "the first look\n",
                       argv[2], gw__fdinfo_get_stats(g)->pids,
                       gw__fdinfo_get_stats(g)->client_lists, gw__fdinfo_get_stats(g)->pids_listed,
                       (unsigned long long)gw__fdinfo_get_stats(g)->syscalls);
            gw__fdinfo_close(g);
        }
        report("cold sweep of that procfs", t, runs, 0);
    }
    free(t);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return 0;
}
