/* test_drm_clients.c — the kernel's DRM client lists (debugfs dri/N/clients)
 * and how the fdinfo sweep uses them to list only the processes they name.
 * The lists are written with the kernel's own column formats (old kernels:
 * "pid" and 7 columns; newer: "tgid" plus name and id columns). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "amd_fixture.h"
#include "backends/drm_clients.h"
#include "backends/fdinfo.h"

#define SEC 1000000000ll
#define NAME_W 64 /* DRM_CLIENT_NAME_MAX_LEN */

/* A client list in the layout of kernels with name and id columns. */
static size_t list_new(char *buf, size_t cap, const char *const *comm, const int *tgid, size_t n)
{
    size_t len = (size_t)snprintf(buf, cap, "%20s %5s %3s master a %5s %10s %*s %20s\n",
                                  "command", "tgid", "dev", "uid", "magic", NAME_W, "name", "id");
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%20s %5d %3d   %c    %c %5d %10u %*s %20llu\n",
                                comm[i], tgid[i], 128, 'n', 'y', 1000, 0u, NAME_W, "<unset>",
                                (unsigned long long)(i + 3));
    return len;
}

/* The same in the layout of older kernels ("pid", no name / id). */
static size_t list_old(char *buf, size_t cap, const char *const *comm, const int *pid, size_t n)
{
    size_t len = (size_t)snprintf(buf, cap, "%20s %5s %3s master a %5s %10s\n", "command", "pid",
                                  "dev", "uid", "magic");
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%20s %5d %3d   %c    %c %5d %10u\n", comm[i],
                                pid[i], 0, 'y', 'y', 0, 0u);
    return len;
}

static void parse_both_tgid_layouts(void **state)
{
    (void)state;
    char t[4096];
    /* a comm with spaces, the kernel's "<unknown>", an empty comm (its
     * column left out) */
    const char *comm[] = {"Xorg", "Web Content", "<unknown>", "", "llama-server"};
    const int pid[] = {1370, 4242, 77, 88, 65535};
    gw__drm_clients dc = {0};
    assert_int_equal(gw__drm_clients_parse(&dc, t, list_new(t, sizeof t, comm, pid, 5)), GW_OK);
    assert_int_equal(dc.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(dc.pids[i], pid[i]);
    /* the layout of kernels without name / id, but with "tgid" */
    dc.n = 0;
    size_t len = (size_t)snprintf(t, sizeof t, "%20s %5s %3s master a %5s %10s\n", "command",
                                  "tgid", "dev", "uid", "magic");
    len += (size_t)snprintf(t + len, sizeof t - len, "%20s %5d %3d   %c    %c %5d %10u\n",
                            "gnome-shell", 901, 0, 'y', 'y', 1000, 0u);
    assert_int_equal(gw__drm_clients_parse(&dc, t, len), GW_OK);
    assert_int_equal(dc.n, 1);
    assert_int_equal(dc.pids[0], 901);
    /* no final newline: the last line still counts; blank lines are skipped */
    dc.n = 0;
    len = list_new(t, sizeof t, comm, pid, 1);
    t[len++] = '\n';
    assert_int_equal(gw__drm_clients_parse(&dc, t, len), GW_OK);
    assert_int_equal(gw__drm_clients_parse(&dc, t, len - 2), GW_OK);
    assert_int_equal(dc.n, 2);
    gw__drm_clients_release(&dc);
}

static void parse_refuses_what_it_cannot_use(void **state)
{
    (void)state;
    gw__drm_clients dc = {0};
    char t[4096];
    static const char *const bad_headers[] = {
        "", "\n", "command\n", "name dev=0000:03:00.0 unique=0000:03:00.0\n",
        "command dev master a uid magic\n  Xorg 0 y y 0 0\n", "pos:\t0\nflags:\t02\n"};
    for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
        assert_int_equal(gw__drm_clients_parse(&dc, bad_headers[i], strlen(bad_headers[i])),
                         GW_EPARSE);
        assert_int_equal(dc.n, 0);
    }
    /* older kernels' "pid" column may hold the opening thread: refused */
    const char *comm[] = {"Xorg", "ns-other"};
    const int pid[] = {1370, 0};
    assert_int_equal(gw__drm_clients_parse(&dc, t, list_old(t, sizeof t, comm, pid, 1)),
                     GW_EPARSE);
    assert_int_equal(dc.n, 0);
    /* a client outside our pid namespace (tgid 0): the set is incomplete */
    assert_int_equal(gw__drm_clients_parse(&dc, t, list_new(t, sizeof t, comm, pid, 2)),
                     GW_ERANGE);
    /* so is any client line whose tgid cannot be read */
    static const char *const bad_lines[] = {
        "                Xorg  abc   0   y    y     0          0\n",
        "                Xorg    12\n",
        "                Xorg 99999999999   0   y    y     0     0\n",
        "                Xorg    -5   0   y    y     0          0\n",
    };
    static const char head[] = "             command  tgid dev master a   uid      magic\n";
    for (size_t i = 0; i < sizeof bad_lines / sizeof *bad_lines; i++) {
        size_t len = (size_t)snprintf(t, sizeof t, "%s%s", head, bad_lines[i]);
        dc.n = 0;
        assert_int_equal(gw__drm_clients_parse(&dc, t, len), GW_ERANGE);
    }
    gw__drm_clients_release(&dc);
}

static void read_skips_minor_links_and_client_folders(void **state)
{
    (void)state;
    char root[64], t[4096];
    assert_non_null(fx_tmpdir(root, sizeof root));
    const char *comm[] = {"a", "b", "c"};
    const int p1[] = {30, 10, 20};
    const int p2[] = {20, 40};
    /* per-device folders, minors as links to them, one client-N folder
     * (newer kernels) */
    list_new(t, sizeof t, comm, p1, 3);
    fx_write(root, "dri/0000:03:00.0/clients", t);
    fx_write(root, "dri/0000:03:00.0/name", "amdgpu dev=0000:03:00.0 unique=0000:03:00.0\n");
    fx_symlink(root, "dri/0", "0000:03:00.0");
    fx_symlink(root, "dri/128", "0000:03:00.0");
    list_new(t, sizeof t, comm, p2, 2);
    fx_write(root, "dri/0000:23:00.0/clients", t);
    fx_write(root, "dri/client-3/proc_info", "pid: 30\ncomm: a\n");
    fx_write(root, "dri/accel-like/name", "a folder without a client list\n");
    gw__drm_clients dc = {0};
    uint64_t sc = 0;
    assert_int_equal(gw__drm_clients_read(&dc, root, &sc), GW_OK);
    assert_int_equal(dc.lists, 2); /* each device once */
    assert_int_equal(dc.n, 4);      /* sorted, without the shared pid twice */
    const uint32_t want[] = {10, 20, 30, 40};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(dc.pids[i], want[i]);
    assert_true(gw__drm_clients_has(&dc, 40));
    assert_false(gw__drm_clients_has(&dc, 41));
    assert_true(sc > 0);
    /* one list that is not a client list, or not complete: no set at all,
     * since a process it leaves out would be listed late */
    fx_write(root, "dri/other/clients", "not a client list\n");
    assert_int_equal(gw__drm_clients_read(&dc, root, NULL), GW_ENOENT);
    assert_int_equal(dc.n, 0);
    const int p0[] = {50, 0};
    list_new(t, sizeof t, comm, p0, 2);
    fx_write(root, "dri/other/clients", t);
    assert_int_equal(gw__drm_clients_read(&dc, root, NULL), GW_ENOENT);
    /* per-minor folders (kernels before per-device folders): the same list
     * in each */
    char old[64];
    assert_non_null(fx_tmpdir(old, sizeof old));
    list_new(t, sizeof t, comm, p1, 3);
    fx_write(old, "dri/0/clients", t);
    fx_write(old, "dri/128/clients", t);
    assert_int_equal(gw__drm_clients_read(&dc, old, NULL), GW_OK);
    assert_int_equal(dc.lists, 2);
    assert_int_equal(dc.n, 3);
    /* an empty list is a list: no process holds a DRM file */
    list_new(t, sizeof t, comm, p1, 0);
    fx_write(old, "dri/0/clients", t);
    fx_write(old, "dri/128/clients", t);
    assert_int_equal(gw__drm_clients_read(&dc, old, NULL), GW_OK);
    assert_int_equal(dc.n, 0);
    assert_false(gw__drm_clients_has(&dc, 20));
    /* older kernels' "pid" lists are not used */
    list_old(t, sizeof t, comm, p1, 3);
    fx_write(old, "dri/0/clients", t);
    assert_int_equal(gw__drm_clients_read(&dc, old, NULL), GW_ENOENT);
    /* nothing to read: no dri folder, or no list in it */
    assert_int_equal(gw__drm_clients_read(&dc, "/nonexistent", NULL), GW_ENOENT);
    assert_int_equal(dc.n, 0);
    fx_unlink(old, "dri/0/clients");
    fx_unlink(old, "dri/128/clients");
    assert_int_equal(gw__drm_clients_read(&dc, old, NULL), GW_ENOENT);
    gw__drm_clients_release(&dc);
    fx_rmrf(root);
    fx_rmrf(old);
}

/* ---------------------------------------------------------- the sweep */

static char *amd_info(char *buf, size_t cap, unsigned id, unsigned vram_kib)
{
    snprintf(buf, cap,
             "pos:\t0\nflags:\t02100002\nmnt_id:\t24\ndrm-driver:\tamdgpu\n"
             "drm-pdev:\t0000:03:00.0\ndrm-client-id:\t%u\ndrm-memory-vram:\t%u KiB\n",
             id, vram_kib);
    return buf;
}

static gw__fdinfo *open_sweep(const char *proc, const char *debugfs)
{
    gw__fdinfo_opts o = {.drivers = GW__DRM_AMDGPU, .rescan_min_ns = SEC,
                         .rescan_max_ns = 8 * SEC, .debugfs_root = debugfs};
    gw__fdinfo *f = NULL;
    gw_error err;
    assert_int_equal(gw__fdinfo_open(&f, proc, &o, &err), GW_OK);
    return f;
}

static bool has_pid(const gw__fdinfo *f, unsigned pid)
{
    for (size_t i = 0; i < gw__fdinfo_usage_count(f); i++)
        if (gw__fdinfo_usage_at(f, i)->pid == pid)
            return true;
    return false;
}

static void write_list(const char *dbg, const int *pids, size_t n)
{
    static const char *const comm[] = {"p", "p", "p", "p", "p", "p", "p", "p"};
    char t[4096];
    list_new(t, sizeof t, comm, pids, n);
    fx_write(dbg, "dri/0000:03:00.0/clients", t);
}

static void sweep_lists_only_named_processes(void **state)
{
    (void)state;
    char proc[64], dbg[64], t[512];
    assert_non_null(fx_tmpdir(proc, sizeof proc));
    assert_non_null(fx_tmpdir(dbg, sizeof dbg));
    /* 20 processes; 10 and 11 hold the GPU, 12..29 do not */
    fx_fd(proc, 10, 5, "/dev/dri/renderD128", amd_info(t, sizeof t, 1, 1024));
    fx_fd(proc, 11, 3, "/dev/dri/renderD128", amd_info(t, sizeof t, 2, 2048));
    for (unsigned pid = 12; pid < 30; pid++)
        fx_fd(proc, pid, 1, "pipe:[9]", "pos:\t0\n");
    const int listed[] = {10, 11};
    write_list(dbg, listed, 2);

    gw__fdinfo *with = open_sweep(proc, dbg);
    gw__fdinfo *without = open_sweep(proc, NULL);
    gw_error err;
    assert_int_equal(gw__fdinfo_sweep(with, 100 * SEC, &err), GW_OK);
    assert_int_equal(gw__fdinfo_sweep(without, 100 * SEC, &err), GW_OK);
    const gw__fdinfo_stats *sw = gw__fdinfo_get_stats(with);
    const gw__fdinfo_stats *so = gw__fdinfo_get_stats(without);
    assert_int_equal(sw->pids, 20);
    assert_int_equal(sw->client_lists, 1);
    assert_int_equal(sw->pids_hinted, 2);
    assert_int_equal(sw->pids_listed, 2);  /* only the named processes */
    assert_int_equal(so->pids_listed, 20); /* every fd folder */
    assert_int_equal(so->client_lists, 0);
    assert_true(sw->syscalls < so->syscalls);
    /* the same results either way */
    assert_int_equal(gw__fdinfo_usage_count(with), 2);
    assert_int_equal(gw__fdinfo_usage_count(without), 2);
    for (size_t i = 0; i < 2; i++) {
        const gw__fdinfo_usage *a = gw__fdinfo_usage_at(with, i);
        const gw__fdinfo_usage *b = gw__fdinfo_usage_at(without, i);
        assert_int_equal(a->pid, b->pid);
        assert_string_equal(a->pdev, b->pdev);
        assert_int_equal(a->vram_bytes, b->vram_bytes);
    }

    /* a known process opens the GPU and the list names it: listed on the
     * next sweep, not after its back-off */
    fx_fd(proc, 20, 4, "/dev/dri/renderD128", amd_info(t, sizeof t, 3, 4096));
    const int listed2[] = {10, 11, 20};
    write_list(dbg, listed2, 3);
    assert_int_equal(gw__fdinfo_sweep(with, 100 * SEC + 1, &err), GW_OK);
    assert_int_equal(sw->pids_listed, 1);
    assert_true(has_pid(with, 20));
    /* named again on the next sweep: not listed again */
    assert_int_equal(gw__fdinfo_sweep(with, 100 * SEC + 2, &err), GW_OK);
    assert_int_equal(sw->pids_listed, 0);
    assert_true(has_pid(with, 20));

    /* a new process the list names is listed at once; one it does not name
     * is not */
    fx_fd(proc, 40, 4, "/dev/dri/renderD128", amd_info(t, sizeof t, 4, 1));
    fx_fd(proc, 41, 1, "pipe:[9]", "pos:\t0\n");
    const int listed3[] = {10, 11, 20, 40};
    write_list(dbg, listed3, 4);
    assert_int_equal(gw__fdinfo_sweep(with, 100 * SEC + 3, &err), GW_OK);
    assert_int_equal(sw->pids_listed, 1);
    assert_true(has_pid(with, 40));

    /* the lists miss a holder (a descriptor inherited from a parent that
     * exited, the list still naming the parent's pid): found by the
     * back-off listing within rescan_max (8 s) */
    fx_fd(proc, 41, 6, "/dev/dri/renderD128", amd_info(t, sizeof t, 5, 1));
    assert_int_equal(gw__fdinfo_sweep(with, 100 * SEC + 4, &err), GW_OK);
    assert_false(has_pid(with, 41));
    assert_int_equal(gw__fdinfo_sweep(with, 109 * SEC, &err), GW_OK);
    assert_true(has_pid(with, 41));

    /* the lists become unreadable: back to listing every new process */
    char dri[128];
    snprintf(dri, sizeof dri, "%s/dri", dbg);
    fx_rmrf(dri);
    fx_fd(proc, 50, 1, "pipe:[9]", "pos:\t0\n");
    assert_int_equal(gw__fdinfo_sweep(with, 109 * SEC + 1, &err), GW_OK);
    assert_int_equal(sw->client_lists, 0);
    assert_int_equal(sw->pids_listed, 1);
    gw__fdinfo_close(with);
    gw__fdinfo_close(without);
    fx_rmrf(proc);
    fx_rmrf(dbg);
}

/* A sweep that cannot read the lists changes nothing about what they said:
 * when they come back, the processes they named all along are not listed
 * again (pid 11 is named but holds its GPU through a descriptor the list
 * attributes to it while another process owns it: no DRM descriptor found). */
static void unreadable_lists_for_one_sweep_relist_nothing(void **state)
{
    (void)state;
    char proc[64], dbg[64], t[512];
    assert_non_null(fx_tmpdir(proc, sizeof proc));
    assert_non_null(fx_tmpdir(dbg, sizeof dbg));
    fx_fd(proc, 10, 5, "/dev/dri/renderD128", amd_info(t, sizeof t, 1, 1024));
    fx_fd(proc, 11, 1, "pipe:[9]", "pos:\t0\n");
    const int listed[] = {10, 11};
    write_list(dbg, listed, 2);
    gw__fdinfo *f = open_sweep(proc, dbg);
    gw_error err;
    const gw__fdinfo_stats *st = gw__fdinfo_get_stats(f);
    assert_int_equal(gw__fdinfo_sweep(f, 100 * SEC, &err), GW_OK);
    assert_int_equal(st->pids_listed, 2);
    /* (root reads any file mode: the list turns to garbage instead) */
    fx_write(dbg, "dri/0000:03:00.0/clients", "not a list\n");
    assert_int_equal(gw__fdinfo_sweep(f, 100 * SEC + 1, &err), GW_OK);
    assert_int_equal(st->client_lists, 0);
    assert_int_equal(st->pids_listed, 0);
    write_list(dbg, listed, 2);
    assert_int_equal(gw__fdinfo_sweep(f, 100 * SEC + 2, &err), GW_OK);
    assert_int_equal(st->client_lists, 1);
    assert_int_equal(st->pids_listed, 0);
    assert_true(has_pid(f, 10));
    gw__fdinfo_close(f);
    fx_rmrf(proc);
    fx_rmrf(dbg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_both_tgid_layouts),
        cmocka_unit_test(parse_refuses_what_it_cannot_use),
        cmocka_unit_test(read_skips_minor_links_and_client_folders),
        cmocka_unit_test(sweep_lists_only_named_processes),
        cmocka_unit_test(unreadable_lists_for_one_sweep_relist_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
