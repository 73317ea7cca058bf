/* test_fdinfo.c — the DRM fdinfo parser (keys, units, legacy keys, garbage,
 * every prefix) and the /proc sweep on temporary proc trees: busy % from two
 * samples (ns and xe cycles, capacity), counters going backwards, clients
 * de-duplicated across fds and processes, kernels without fdinfo keys, and
 * the per-pid cache (what is and is not re-read). Times are passed in, so
 * every expected figure is exact arithmetic on the values written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "amd_fixture.h"
#include "backends/fdinfo.h"
#include "core/util.h"

#define SEC 1000000000ll

static const gw__fdinfo_engine *eng(const gw__fdinfo_client *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_engines; i++)
        if (strcmp(c->engines[i].name, name) == 0)
            return &c->engines[i];
    return NULL;
}

static const char AMD_TEXT[] = "pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t1045\n"
                               "drm-driver:\tamdgpu\ndrm-pdev:\t0000:0A:00.0\n"
                               "drm-client-id:\t17\npasid:\t32771\n"
                               "drm-memory-vram:\t1024 KiB\ndrm-memory-gtt: \t2 MiB\n"
                               "drm-memory-cpu: \t0 KiB\n"
                               "drm-engine-gfx:\t123 ns\ndrm-engine-compute:\t456 ns\n"
                               "drm-engine-dec:\t7 ns\ndrm-engine-dec:\t3 ns\n";

static void parse_amdgpu_keys_and_units(void **state)
{
    (void)state;
    gw__fdinfo_client c;
    assert_int_equal(gw__fdinfo_parse(AMD_TEXT, strlen(AMD_TEXT), &c), GW_OK);
    assert_int_equal(c.driver, GW__DRM_AMDGPU);
    assert_true(c.has_pdev);
    assert_string_equal(c.pdev, "0000:0a:00.0"); /* normalised */
    assert_true(c.has_id);
    assert_int_equal(c.client_id, 17); /* drm-client-id wins over pasid */
    assert_false(c.legacy);
    uint64_t b;
    assert_true(gw__fdinfo_client_vram(&c, &b));
    assert_int_equal(b, 1024ull * 1024);
    assert_true(gw__fdinfo_client_gtt(&c, &b));
    assert_int_equal(b, 2ull * 1024 * 1024);
    assert_int_equal(eng(&c, "gfx")->ns, 123);
    assert_int_equal(eng(&c, "compute")->ns, 456);
    assert_int_equal(eng(&c, "dec")->ns, 10); /* a name printed twice adds up */
    assert_int_equal(eng(&c, "gfx")->capacity, 1);
}

static void parse_resident_wins_and_i915_regions(void **state)
{
    (void)state;
    const char *t = "drm-driver: i915\ndrm-pdev: 0000:00:02.0\ndrm-client-id: 3\n"
                    "drm-total-system0: 200 KiB\ndrm-resident-system0: 100 KiB\n"
                    "drm-total-local0: 4096\ndrm-total-stolen-system0: 64 KiB\n"
                    "drm-engine-video: 50 ns\ndrm-engine-capacity-video: 2\n";
    gw__fdinfo_client c;
    assert_int_equal(gw__fdinfo_parse(t, strlen(t), &c), GW_OK);
    assert_int_equal(c.driver, GW__DRM_I915);
    uint64_t b;
    assert_true(gw__fdinfo_client_gtt(&c, &b));
    assert_int_equal(b, 100 * 1024); /* resident, not total; stolen ignored */
    assert_true(gw__fdinfo_client_vram(&c, &b));
    assert_int_equal(b, 4096); /* no unit: bytes */
    assert_int_equal(eng(&c, "video")->capacity, 2);
}

static void parse_legacy_amdgpu_keys(void **state)
{
    (void)state;
    const char *t = "pos:\t0\nflags:\t02100002\nmnt_id:\t24\npdev:\t0000:43:00.0\n"
                    "pasid:\t32790\nvram mem:\t262144 kB\ngtt mem:\t4096 kB\n"
                    "cpu mem:\t0 kB\ngfx0:\t12.50%\n";
    gw__fdinfo_client c;
    assert_int_equal(gw__fdinfo_parse(t, strlen(t), &c), GW_OK);
    assert_true(c.legacy);
    assert_int_equal(c.driver, GW__DRM_AMDGPU);
    assert_true(c.has_id);
    assert_int_equal(c.client_id, 32790); /* pasid identifies the client */
    uint64_t b;
    assert_true(gw__fdinfo_client_vram(&c, &b));
    assert_int_equal(b, 262144ull * 1024);
    assert_int_equal(c.n_engines, 0); /* percentages of an unknown interval */
}

static void parse_rejects_garbage(void **state)
{
    (void)state;
    gw__fdinfo_client c;
    const char *none = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\n";
    assert_int_equal(gw__fdinfo_parse(none, strlen(none), &c), GW_ENOENT);
    const char *bad = "drm-driver:\tamdgpu\ndrm-pdev:\tnot-a-pci-id\n"
                      "drm-client-id:\t-4\n"
                      "drm-engine-gfx:\t99999999999999999999999 ns\n"
                      "drm-engine-compute:\t12 ms\n"
                      "drm-memory-vram:\t18446744073709551615 KiB\n"
                      "drm-memory-gtt:\t12 parsecs\n"
                      "drm-engine-capacity-gfx:\t0\n"
                      "drm-engine-bad name!:\t5 ns\n"
                      ":\t\n\n::::\nno colon here\n";
    assert_int_equal(gw__fdinfo_parse(bad, strlen(bad), &c), GW_OK);
    assert_false(c.has_pdev);
    assert_false(c.has_id);
    uint64_t b;
    assert_false(gw__fdinfo_client_vram(&c, &b)); /* overflowing KiB dropped */
    assert_false(gw__fdinfo_client_gtt(&c, &b));
    for (uint32_t i = 0; i < c.n_engines; i++)
        assert_false(c.engines[i].flags & GW__ENG_NS);
    /* a NUL inside a line does not end the buffer early or confuse the parser */
    const char nul[] = "drm-driver:\tamd\0gpu\ndrm-client-id:\t5\n";
    assert_int_equal(gw__fdinfo_parse(nul, sizeof nul - 1, &c), GW_OK);
    assert_int_equal(c.driver, 0);
    assert_int_equal(c.client_id, 5);
}

static void parse_every_prefix_in_exact_buffers(void **state)
{
    (void)state;
    size_t n = strlen(AMD_TEXT);
    for (size_t len = 0; len <= n; len++) {
        char *buf = malloc(len ? len : 1); /* exact size: ASan sees any overread */
        assert_non_null(buf);
        memcpy(buf, AMD_TEXT, len);
        gw__fdinfo_client c;
        int rc = gw__fdinfo_parse(buf, len, &c);
        assert_true(rc == GW_OK || rc == GW_ENOENT);
        free(buf);
    }
    /* pseudo-random bytes */
    uint32_t x = 12345;
    char junk[512];
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            x = x * 1103515245u + 12345u;
            junk[i] = "drm-engine-gfx: 0123456789 nsKiB\n\t:"[(x >> 16) % 36];
        }
        gw__fdinfo_client c;
        gw__fdinfo_parse(junk, sizeof junk, &c);
    }
}

/* ------------------------------------------------------------- sweeps */

static char *amd_info(char *buf, size_t cap, const char *pdev, unsigned id, unsigned vram_kib,
                      unsigned long long gfx_ns, unsigned long long compute_ns,
                      unsigned long long enc_ns)
{
    snprintf(buf, cap,
             "pos:\t0\nflags:\t02100002\nmnt_id:\t24\ndrm-driver:\tamdgpu\ndrm-pdev:\t%s\n"
             "drm-client-id:\t%u\ndrm-memory-vram:\t%u KiB\ndrm-memory-gtt: \t8 KiB\n"
             "drm-engine-gfx:\t%llu ns\ndrm-engine-compute:\t%llu ns\ndrm-engine-enc:\t%llu ns\n",
             pdev, id, vram_kib, gfx_ns, compute_ns, enc_ns);
    return buf;
}

static gw__fdinfo *open_sweep(const char *root, unsigned drivers)
{
    gw__fdinfo_opts o = {.drivers = drivers, .rescan_min_ns = SEC, .rescan_max_ns = 8 * SEC};
    gw__fdinfo *f = NULL;
    gw_error err;
    assert_int_equal(gw__fdinfo_open(&f, root, &o, &err), GW_OK);
    return f;
}

static const gw__fdinfo_usage *find_usage(const gw__fdinfo *f, unsigned pid, const char *pdev)
{
    for (size_t i = 0; i < gw__fdinfo_usage_count(f); i++) {
        const gw__fdinfo_usage *u = gw__fdinfo_usage_at(f, i);
        if (u->pid == pid && strcmp(u->pdev, pdev) == 0)
            return u;
    }
    return NULL;
}

#define HAS(u, b) (((u)->valid >> (b)) & 1u)

static void busy_from_two_samples(void **state)
{
    (void)state;
    char root[64], t[512];
    assert_non_null(fx_tmpdir(root, sizeof root));
    fx_fd(root, 10, 5, "/dev/dri/renderD128",
          amd_info(t, sizeof t, "0000:03:00.0", 1, 1024, 1000000000ull, 0, 0));
    gw__fdinfo *f = open_sweep(root, GW__DRM_AMDGPU);
    gw_error err;
    assert_int_equal(gw__fdinfo_sweep(f, 100 * SEC, &err), GW_OK);
    const gw__fdinfo_usage *u = find_usage(f, 10, "0000:03:00.0");
    assert_non_null(u);
    assert_true(HAS(u, GW__USE_VRAM));
    assert_int_equal(u->vram_bytes, 1024 * 1024);
    assert_false(HAS(u, GW__USE_GFX)); /* first sample: no busy % */
    /* 2 s later: gfx +0.5 s, compute +0.3 s, enc +1 s  */
    fx_fd(root, 10, 5, "/dev/dri/renderD128",
          amd_info(t, sizeof t, "0000:03:00.0", 1, 2048, 1500000000ull, 300000000ull,
                   1000000000ull));
    assert_int_equal(gw__fdinfo_sweep(f, 102 * SEC, &err), GW_OK);
    u = find_usage(f, 10, "0000:03:00.0");
    assert_non_null(u);
    assert_int_equal(u->vram_bytes, 2048 * 1024); /* re-read through the held fd */
    assert_true(HAS(u, GW__USE_GFX));
    assert_float_equal(u->gfx_pct, 100.0 * (0.5 + 0.3) / 2.0, 1e-9);
    assert_true(HAS(u, GW__USE_ENC));
    assert_float_equal(u->enc_pct, 100.0 * 1.0 / 2.0, 1e-9);
    assert_true(u->compute);
    gw__fdinfo_usage d;
    assert_true(gw__fdinfo_device_usage(f, "0000:03:00.0", &d));
    assert_float_equal(d.gfx_pct, u->gfx_pct, 1e-9);
    gw__fdinfo_close(f);
    fx_rmrf(root);
}

static void counters_going_backwards_are_ignored(void **state)
{
    (void)state;
    char root[64], t[512];
    assert_non_null(fx_tmpdir(root, sizeof root));
    fx_fd(root, 10, 5, "/dev/dri/renderD128",
          amd_info(t, sizeof t, "0000:03:00.0", 1, 1024, 5000000000ull, 0, 100));
    gw__fdinfo *f = open_sweep(root, GW__DRM_AMDGPU);
    gw_error err;
    assert_int_equal(gw__fdinfo_sweep(f, 10 * SEC, &err), GW_OK);
    /* gfx goes backwards, enc moves on */
    fx_fd(root, 10, 5, "/dev/dri/renderD128",
          amd_info(t, sizeof t, "0000:03:00.0", 1, 1024, 4000000000ull, 0, 100 + SEC / 4));
    assert_int_equal(gw__fdinfo_sweep(f, 11 * SEC, &err), GW_OK);
    const gw__fdinfo_usage *u = find_usage(f, 10, "0000:03:00.0");
    assert_non_null(u);
    assert_false(HAS(u, GW__USE_GFX));
    assert_true(HAS(u, GW__USE_ENC));
    assert_float_equal(u->enc_pct, 25.0, 1e-9);
    assert_int_equal(gw__fdinfo_get_stats(f)->backwards, 1);
    /* the lowered value is the new baseline */
    fx_fd(root, 10, 5, "/dev/dri/renderD128",
          amd_info(t, sizeof t, "0000:03:00.0", 1, 1024, 4100000000ull, 0, 100 + SEC / 4));
    assert_int_equal(gw__fdinfo_sweep(f, 12 * SEC, &err), GW_OK);
    u = find_usage(f, 10, "0000:03:00.0");
    assert_true(HAS(u, GW__USE_GFX));
    assert_float_equal(u->gfx_pct, 10.0, 1e-9);
    assert_int_equal(gw__fdinfo_get_stats(f)->backwards, 0);
    gw__fdinfo_close(f);
    fx_rmrf(root);
}

static void xe_cycles_and_i915_capacity(void **state)
{
    (void)state;
    char root[64], t[1024];
    assert_non_null(fx_tmpdir(root, sizeof root));
    const char *xe = "drm-driver:\txe\ndrm-pdev:\t0000:03:00.0\ndrm-client-id:\t7\n"
                     "drm-resident-vram0:\t%u KiB\ndrm-resident-gtt:\t4 KiB\n"
                     "drm-cycles-rcs:\t%llu\ndrm-total-cycles-rcs:\t%llu\n"
                     "drm-cycles-ccs:\t%llu\ndrm-total-cycles-ccs:\t%llu\n"
                     "drm-engine-capacity-ccs:\t4\n";
    const char *i9 = "drm-driver:\ti915\ndrm-pdev:\t0000:00:02.0\ndrm-client-id:\t3\n"
                     "drm-resident-system0:\t100 KiB\n"
                     "drm-engine-render:\t%llu ns\ndrm-engine-video:\t%llu ns\n"
                     "drm-engine-capacity-video:\t2\n";
    snprintf(t, sizeof t, xe, 512u, 1000ull, 10000ull, 0ull, 10000ull);
    fx_fd(root, 20, 3, "/dev/dri/renderD128", t);
    snprintf(t, sizeof t, i9, 0ull, 0ull);
    fx_fd(root, 30, 4, "/dev/dri/renderD129", t);
    /* an amdgpu client is not for the Intel sweep */
    char a[512];
    fx_fd(root, 40, 4, "/dev/dri/renderD130", amd_info(a, sizeof a, "0000:43:00.0", 9, 1, 1, 1, 1));
    gw__fdinfo *f = open_sweep(root, GW__DRM_I915 | GW__DRM_XE);
    gw_error err;
    assert_int_equal(gw__fdinfo_sweep(f, 50 * SEC, &err), GW_OK);
    assert_int_equal(gw__fdinfo_usage_count(f), 2);
    assert_null(find_usage(f, 40, "0000:43:00.0"));
    /* xe: rcs +3000 of 10000 cycles, ccs +8000 of 10000 on 4 engines;
     * i915: render +0.25 s in 1 s, video +1 s on 2 engines */
    snprintf(t, sizeof t, xe, 1024u, 4000ull, 20000ull, 8000ull, 20000ull);
    fx_fd(root, 20, 3, "/dev/dri/renderD128", t);
    snprintf(t, sizeof t, i9, 250000000ull, 1000000000ull);
    fx_fd(root, 30, 4, "/dev/dri/renderD129", t);
    assert_int_equal(gw__fdinfo_sweep(f, 51 * SEC, &err), GW_OK);
    const gw__fdinfo_usage *u = find_usage(f, 20, "0000:03:00.0");
    assert_non_null(u);
    assert_float_equal(u->gfx_pct, 100.0 * (3000.0 / 10000.0 + 8000.0 / 10000.0 / 4.0), 1e-9);
    assert_int_equal(u->vram_bytes, 1024 * 1024);
    assert_int_equal(u->gtt_bytes, 4 * 1024);
    assert_true(u->compute);
    u = find_usage(f, 30, "0000:00:02.0");
    assert_non_null(u);
    assert_float_equal(u->gfx_pct, 25.0, 1e-9);
    assert_float_equal(u->enc_pct, 50.0, 1e-9); /* video counts as enc and dec */
    assert_float_equal(u->dec_pct, 50.0, 1e-9);
    assert_false(HAS(u, GW__USE_VRAM));
    assert_int_equal(u->gtt_bytes, 100 * 1024);
    gw__fdinfo_close(f);
    fx_rmrf(root);
}

static void clients_deduplicated_across_fds_and_processes(void **state)
{
    (void)state;
    char root[64], t[512], t2[512];
    assert_non_null(fx_tmpdir(root, sizeof root));
    amd_info(t, sizeof t, "0000:03:00.0", 21, 1000, 0, 0, 0);
    fx_fd(root, 300, 5, "/dev/dri/renderD128", t); /* a dup in the same process */
    fx_fd(root, 300, 6, "/dev/dri/renderD128", t);
    fx_fd(root, 200, 9, "/dev/dri/renderD128", t); /* inherited by a fork, lower pid */
    fx_fd(root, 300, 7, "/dev/dri/renderD129",
          amd_info(t2, sizeof t2, "0000:43:00.0", 31, 500, 0, 0, 0)); /* second GPU */
    fx_fd(root, 300, 8, "/dev/dri/renderD128",
          amd_info(t2, sizeof t2, "0000:03:00.0", 22, 10, 0, 0, 0)); /* second client */
    gw__fdinfo *f = open_sweep(root, GW__DRM_AMDGPU);
    gw_error err;
    assert_int_equal(gw__fdinfo_sweep(f, SEC, &err), GW_OK);
    const gw__fdinfo_stats *st = gw__fdinfo_get_stats(f);
    assert_int_equal(st->drm_fds, 5);
    assert_int_equal(st->clients, 3);
    const gw__fdinfo_usage *u = find_usage(f, 200, "0000:03:00.0");
    assert_non_null(u); /* client 21 goes to the lowest pid */
    assert_int_equal(u->vram_bytes, 1000 * 1024);
    u = find_usage(f, 300, "0000:03:00.0");
    assert_non_null(u);
    assert_int_equal(u->vram_bytes, 10 * 1024); /* only its own client 22 */
    assert_int_equal(u->clients, 1);
    u = find_usage(f, 300, "0000:43:00.0");
    assert_non_null(u);
    assert_int_equal(u->vram_bytes, 500 * 1024);
    gw__fdinfo_usage d;
    assert_true(gw__fdinfo_device_usage(f, "0000:03:00.0", &d));
    assert_int_equal(d.vram_bytes, (1000 + 10) * 1024);
    assert_int_equal(d.clients, 2);
    gw__fdinfo_close(f);
    fx_rmrf(root);
}

/* One process's memory on one device, read at once (the batch finder's
 * own-process figure): its clients counted once however many descriptors
 * reach them, another device's and another driver's left out, an APU's GTT
 * only when asked. */
static void one_process_memory(void **state)
{
    (void)state;
    char root[64], t[512], t2[512];
    assert_non_null(fx_tmpdir(root, sizeof root));
    amd_info(t, sizeof t, "0000:03:00.0", 21, 1000, 40, 0, 0);
    fx_fd(root, 300, 5, "/dev/dri/renderD128", t); /* the same client twice */
    fx_fd(root, 300, 6, "/dev/dri/renderD128", t);
    fx_fd(root, 200, 9, "/dev/dri/renderD128", t); /* shared with a fork: counts for both */
    fx_fd(root, 300, 7, "/dev/dri/renderD129",
          amd_info(t2, sizeof t2, "0000:43:00.0", 31, 500, 0, 0, 0)); /* another GPU */
    fx_fd(root, 300, 8, "/dev/dri/renderD128",
          amd_info(t2, sizeof t2, "0000:03:00.0", 22, 10, 2, 0, 0)); /* a second client */
    fx_fd(root, 300, 10, "/dev/null", "pos:\t0\n");
    fx_fd(root, 400, 3, "/dev/null", "pos:\t0\n");
    uint64_t b = 0;
    gw_error err;
    assert_int_equal(gw__fdinfo_pid_memory(root, 300, "0000:03:00.0", GW__DRM_AMDGPU, false, &b,
                                           &err), GW_OK);
    assert_int_equal(b, (1000 + 10) * 1024);
    assert_int_equal(gw__fdinfo_pid_memory(root, 300, "00000000:03:00.0", GW__DRM_AMDGPU, true,
                                           &b, &err), GW_OK); /* NVML-style address, + GTT */
    assert_int_equal(b, (1000 + 8 + 10 + 8) * 1024); /* amd_info's clients hold 8 KiB GTT */
    assert_int_equal(gw__fdinfo_pid_memory(root, 200, "0000:03:00.0", GW__DRM_AMDGPU, false, &b,
                                           &err), GW_OK);
    assert_int_equal(b, 1000 * 1024);
    assert_int_equal(gw__fdinfo_pid_memory(root, 300, "0000:43:00.0", GW__DRM_AMDGPU, false, &b,
                                           &err), GW_OK);
    assert_int_equal(b, 500 * 1024);
    assert_int_equal(gw__fdinfo_pid_memory(root, 300, "0000:03:00.0", GW__DRM_I915, false, &b,
                                           &err), GW_ENOENT); /* not that driver's */
    assert_int_equal(gw__fdinfo_pid_memory(root, 400, "0000:03:00.0", GW__DRM_AMDGPU, false, &b,
                                           &err), GW_ENOENT);
    assert_non_null(strstr(err.message, "no client"));
    assert_int_equal(gw__fdinfo_pid_memory(root, 999, "0000:03:00.0", GW__DRM_AMDGPU, false, &b,
                                           &err), GW_EIO);
    assert_int_equal(gw__fdinfo_pid_memory(root, 300, "card0", GW__DRM_AMDGPU, false, &b, &err),
                     GW_EINVAL);
    fx_rmrf(root);
}

static void kernel_without_fdinfo_keys_is_said(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fx_tmpdir(root, sizeof root));
    fx_fd(root, 50, 5, "/dev/dri/renderD128", "pos:\t0\nflags:\t02100002\nmnt_id:\t24\n");
    fx_fd(root, 50, 6, "socket:[1234]", "pos:\t0\nflags:\t02\n");
    gw__fdinfo *f = open_sweep(root, GW__DRM_AMDGPU);
    gw_error err;
    assert_int_equal(gw__fdinfo_sweep(f, SEC, &err), GW_OK);
    const gw__fdinfo_stats *st = gw__fdinfo_get_stats(f);
    assert_int_equal(st->drm_fds, 1);
    assert_int_equal(st->drm_fds_nokeys, 1);
    assert_int_equal(gw__fdinfo_usage_count(f), 0);
    char msg[384];
    assert_non_null(strstr(gw__fdinfo_describe(f, msg, sizeof msg), "no drm-* keys"));
    gw__fdinfo_close(f);
    fx_rmrf(root);
}

static void cache_skips_unchanged_and_rescans_on_backoff(void **state)
{
    (void)state;
    char root[64], t[512];
    assert_non_null(fx_tmpdir(root, sizeof root));
    fx_fd(root, 10, 5, "/dev/dri/renderD128", amd_info(t, sizeof t, "0000:03:00.0", 1, 1, 0, 0, 0));
    fx_fd(root, 11, 1, "pipe:[9]", "pos:\t0\n");
    gw__fdinfo *f = open_sweep(root, GW__DRM_AMDGPU);
    gw_error err;
    assert_int_equal(gw__fdinfo_sweep(f, 100 * SEC, &err), GW_OK);
    const gw__fdinfo_stats *st = gw__fdinfo_get_stats(f);
    assert_int_equal(st->pids, 2);
    assert_int_equal(st->pids_listed, 2); /* new pids are listed at once */
    /* same moment: nothing is listed again; the DRM fd is re-read */
    assert_int_equal(gw__fdinfo_sweep(f, 100 * SEC, &err), GW_OK);
    assert_int_equal(st->pids_listed, 0);
    assert_int_equal(gw__fdinfo_usage_count(f), 1);
    /* pid 11 (there before the first sweep) opens a GPU later: unseen until
     * its first rescan, which falls in [rescan_min, rescan_max] = [1, 8] s */
    fx_fd(root, 11, 4, "/dev/dri/renderD128", amd_info(t, sizeof t, "0000:03:00.0", 2, 1, 0, 0, 0));
    assert_int_equal(gw__fdinfo_sweep(f, 100 * SEC + 1, &err), GW_OK);
    assert_int_equal(gw__fdinfo_usage_count(f), 1);
    assert_int_equal(gw__fdinfo_sweep(f, 108 * SEC, &err), GW_OK);
    assert_int_equal(gw__fdinfo_usage_count(f), 2);
    /* a new pid is listed on the very next sweep */
    fx_fd(root, 12, 1, "pipe:[10]", "pos:\t0\n");
    assert_int_equal(gw__fdinfo_sweep(f, 108 * SEC + 1, &err), GW_OK);
    assert_int_equal(st->pids_listed, 1);
    /* and, being young, is listed again after rescan_min (1 s) */
    fx_fd(root, 12, 4, "/dev/dri/renderD128", amd_info(t, sizeof t, "0000:03:00.0", 3, 1, 0, 0, 0));
    assert_int_equal(gw__fdinfo_sweep(f, 108 * SEC + 2, &err), GW_OK);
    assert_int_equal(gw__fdinfo_usage_count(f), 2);
    assert_int_equal(gw__fdinfo_sweep(f, 109 * SEC + 1, &err), GW_OK);
    assert_int_equal(gw__fdinfo_usage_count(f), 3);
    /* pid 10 closes its fd: the read fails, the client goes */
    fx_unlink(root, "10/fdinfo/5");
    fx_unlink(root, "10/fd/5");
    assert_int_equal(gw__fdinfo_sweep(f, 109 * SEC + 2, &err), GW_OK);
    /* a held descriptor of a regular file still reads the old text on a
     * fixture; the real procfs fails it. Either way, after the rescan that
     * follows (<= rescan_max), pid 10 is gone from the results. */
    assert_int_equal(gw__fdinfo_sweep(f, 130 * SEC, &err), GW_OK);
    assert_null(find_usage(f, 10, "0000:03:00.0"));
    assert_non_null(find_usage(f, 11, "0000:03:00.0"));
    /* a pid that disappears is dropped at once */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/12", root);
    fx_rmrf(dir);
    assert_int_equal(gw__fdinfo_sweep(f, 130 * SEC + 1, &err), GW_OK);
    assert_int_equal(st->pids, 2);
    assert_null(find_usage(f, 12, "0000:03:00.0"));
    gw__fdinfo_close(f);
    fx_rmrf(root);
}

static void oversized_fdinfo_keeps_complete_lines_only(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fx_tmpdir(root, sizeof root));
    /* 8 KiB is read; the vram line straddles that boundary */
    size_t cap = 16384, len = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    len += (size_t)snprintf(t, cap, "drm-driver:\tamdgpu\ndrm-pdev:\t0000:03:00.0\n"
                                    "drm-client-id:\t5\n");
    while (len + 13 <= 8191 - 20)
        len += (size_t)snprintf(t + len, cap - len, "x:\t%s\n", "padpadpad");
    while (len < 8191 - 20) /* the read ends after "drm-memory-vram:\t104" */
        t[len++] = '\n';
    len += (size_t)snprintf(t + len, cap - len, "drm-memory-vram:\t1048576 KiB\n");
    t[len] = '\0';
    fx_fd(root, 10, 5, "/dev/dri/renderD128", t);
    free(t);
    gw__fdinfo *f = open_sweep(root, GW__DRM_AMDGPU);
    gw_error err;
    assert_int_equal(gw__fdinfo_sweep(f, SEC, &err), GW_OK);
    const gw__fdinfo_usage *u = find_usage(f, 10, "0000:03:00.0");
    assert_non_null(u);
    assert_false(HAS(u, GW__USE_VRAM)); /* never a truncated number */
    gw__fdinfo_close(f);
    fx_rmrf(root);
}

static void open_fails_cleanly_without_proc(void **state)
{
    (void)state;
    gw__fdinfo *f = (gw__fdinfo *)1;
    gw_error err;
    assert_int_equal(gw__fdinfo_open(&f, "/nonexistent/proc", NULL, &err), GW_ENOENT);
    assert_null(f);
    assert_non_null(strstr(err.message, "/nonexistent/proc"));
    gw__fdinfo_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_amdgpu_keys_and_units),
        cmocka_unit_test(parse_resident_wins_and_i915_regions),
        cmocka_unit_test(parse_legacy_amdgpu_keys),
        cmocka_unit_test(parse_rejects_garbage),
        cmocka_unit_test(parse_every_prefix_in_exact_buffers),
        cmocka_unit_test(busy_from_two_samples),
        cmocka_unit_test(counters_going_backwards_are_ignored),
        cmocka_unit_test(xe_cycles_and_i915_capacity),
        cmocka_unit_test(clients_deduplicated_across_fds_and_processes),
        cmocka_unit_test(one_process_memory),
        cmocka_unit_test(kernel_without_fdinfo_keys_is_said),
        cmocka_unit_test(cache_skips_unchanged_and_rescans_on_backoff),
        cmocka_unit_test(oversized_fdinfo_keeps_complete_lines_only),
        cmocka_unit_test(open_fails_cleanly_without_proc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
