/* test_plan.c — the placement engine, as tables.
 *
 * Every expected plan below is worked out by hand from the policy's
 * definition in plan.h (the comment on each row shows the arithmetic), never
 * copied from the code's output. Sizes are in MiB so halves of GiB are exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "place/plan.h"
#include "render/json_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1ull << 20)
#define G(x) ((uint64_t)((x) * 1024.0) * MIB) /* GiB, exact for .5 steps */

typedef struct dspec {
    double free_g, pending_g;
    gw_device_state state;
    double temp_c, limit_c; /* 0: none */
    bool no_free;
} dspec;

typedef struct uexp {
    uint32_t dev, first, n_units;
    double bytes_g;
} uexp;

typedef struct pcase {
    const char *name;
    size_t n_dev;
    dspec dev[8];
    /* need */
    double size_g;
    size_t n_units;
    double unit_g[48];   /* when units_same == 0 */
    double units_same_g; /* all units this size when non-zero */
    double overhead_g, host_g;
    bool partial;
    /* options */
    gw_place_policy policy;
    double margin_g;
    unsigned gpus;
    size_t n_list;
    uint32_t list[8];
    double max_temp_c;
    /* expected */
    bool fits, is_partial;
    uint32_t ngl;
    size_t n_used;
    uexp used[8];
    double host_bytes_g;
    size_t n_excluded;
    uint32_t excluded[8];
    const char *reason_has[4];
    const char *excluded_has; /* the first exclusion's reason, exactly */
} pcase;

static const pcase cases[] = {
    /* --- single GPU first: best fit picks the smallest GPU that holds it */
    {.name = "plain 10 GiB on 24/12/16 -> the 12 (smallest that fits)",
     .n_dev = 3, .dev = {{24}, {12}, {16}}, .size_g = 10,
     .fits = true, .n_used = 1, .used = {{1, 0, 0, 10}}},
    {.name = "10 layers x 1 GiB + 1 GiB overhead on 24/12/16 -> the 12 (cap 11 >= 10)",
     .n_dev = 3, .dev = {{24}, {12}, {16}}, .n_units = 10, .units_same_g = 1, .overhead_g = 1,
     .fits = true, .ngl = 10, .n_used = 1, .used = {{1, 0, 10, 11}}},
    {.name = "12 GiB need with 1 GiB margin skips the 12 (usable 11) -> the 16",
     .n_dev = 3, .dev = {{24}, {12}, {16}}, .size_g = 12, .margin_g = 1,
     .fits = true, .n_used = 1, .used = {{2, 0, 0, 12}}},
    {.name = "equal best fits: the first in order wins",
     .n_dev = 3, .dev = {{24}, {16}, {16}}, .size_g = 10,
     .fits = true, .n_used = 1, .used = {{1, 0, 0, 10}}},

    /* --- needs two GPUs */
    {.name = "40 x 1 GiB on 24+24: fewest GPUs = 2, proportional 20/20",
     .n_dev = 2, .dev = {{24}, {24}}, .n_units = 40, .units_same_g = 1,
     .fits = true, .ngl = 40, .n_used = 2, .used = {{0, 0, 20, 20}, {1, 20, 20, 20}}},
    {.name = "40 x 1 GiB on 24+24+8: the two largest; the 8 stays free",
     .n_dev = 3, .dev = {{8}, {24}, {24}}, .n_units = 40, .units_same_g = 1,
     .fits = true, .ngl = 40, .n_used = 2, .used = {{1, 0, 20, 20}, {2, 20, 20, 20}}},
    {.name = "40 x 1 GiB + 1 GiB overhead on 24+24: caps 23/23 -> 20/20, 21 GiB each",
     .n_dev = 2, .dev = {{24}, {24}}, .n_units = 40, .units_same_g = 1, .overhead_g = 1,
     .fits = true, .ngl = 40, .n_used = 2, .used = {{0, 0, 20, 21}, {1, 20, 20, 21}}},

    {.name = "41 x 1 GiB on four equal 24s: the first two (ties keep position order)",
     .n_dev = 4, .dev = {{24}, {24}, {24}, {24}}, .n_units = 41, .units_same_g = 1,
     .fits = true, .ngl = 41, .n_used = 2, .used = {{0, 0, 21, 21}, {1, 21, 20, 20}}},

    /* --- mixed sizes 24+12+12: proportional, the small GPUs not starved */
    {.name = "40 x 1 GiB on 24+12+12: needs all three; targets 20/30/40 -> 20,10,10",
     .n_dev = 3, .dev = {{24}, {12}, {12}}, .n_units = 40, .units_same_g = 1,
     .fits = true, .ngl = 40, .n_used = 3,
     .used = {{0, 0, 20, 20}, {1, 20, 10, 10}, {2, 30, 10, 10}}},
    {.name = "spread 12 x 1 GiB on 24+12+12: shares 6/3/3",
     .n_dev = 3, .dev = {{24}, {12}, {12}}, .n_units = 12, .units_same_g = 1,
     .policy = GW_PLACE_SPREAD,
     .fits = true, .ngl = 12, .n_used = 3, .used = {{0, 0, 6, 6}, {1, 6, 3, 3}, {2, 9, 3, 3}}},
    {.name = "spread plain 24 GiB on 24+12+12: 12/6/6",
     .n_dev = 3, .dev = {{24}, {12}, {12}}, .size_g = 24, .policy = GW_PLACE_SPREAD,
     .fits = true, .n_used = 3, .used = {{0, 0, 0, 12}, {1, 0, 0, 6}, {2, 0, 0, 6}}},
    {.name = "pack plain 14 GiB on 24+12+12: fill the 12s in order (12 then 2)",
     .n_dev = 3, .dev = {{24}, {12}, {12}}, .size_g = 14, .policy = GW_PLACE_PACK,
     .fits = true, .n_used = 2, .used = {{1, 0, 0, 12}, {2, 0, 0, 2}}},
    {.name = "pack 10 GiB on 24+12+12: one 12 holds it",
     .n_dev = 3, .dev = {{24}, {12}, {12}}, .size_g = 10, .policy = GW_PLACE_PACK,
     .fits = true, .n_used = 1, .used = {{1, 0, 0, 10}}},

    /* --- partial offload */
    {.name = "20 x 1 GiB, 1 GiB overhead on one 8: cap 7 -> last 7 layers on GPU",
     .n_dev = 1, .dev = {{8}}, .n_units = 20, .units_same_g = 1, .overhead_g = 1, .host_g = 0.5,
     .partial = true,
     .fits = true, .is_partial = true, .ngl = 7, .n_used = 1, .used = {{0, 13, 7, 8}},
     .host_bytes_g = 13.5, .reason_has = {"7 of 20 layers"}},
    {.name = "unequal layers 2,2,2,1,1,1 on cap 3.5: last three (3 GiB) fit, a 2 does not",
     .n_dev = 1, .dev = {{3.5}}, .n_units = 6, .unit_g = {2, 2, 2, 1, 1, 1}, .partial = true,
     .fits = true, .is_partial = true, .ngl = 3, .n_used = 1, .used = {{0, 3, 3, 3}},
     .host_bytes_g = 6},
    {.name = "partial over two GPUs 6+4 with 16 x 1 GiB: 10 layers, proportional 6/4",
     .n_dev = 2, .dev = {{6}, {4}}, .n_units = 16, .units_same_g = 1, .partial = true,
     .fits = true, .is_partial = true, .ngl = 10, .n_used = 2,
     .used = {{0, 6, 6, 6}, {1, 12, 4, 4}}, .host_bytes_g = 6},
    {.name = "partial not allowed: does not fit, says so",
     .n_dev = 1, .dev = {{8}}, .n_units = 20, .units_same_g = 1,
     .fits = false, .reason_has = {"partial offload not allowed", "20.00 GiB"}},

    /* --- layer granularity: proportional overflows, in-order fill fits */
    {.name = "spread 2,2,5 on caps 9+4: midpoint rule would send the 5 to the 4; fill puts all on the 9",
     .n_dev = 2, .dev = {{9}, {4}}, .n_units = 3, .unit_g = {2, 2, 5}, .policy = GW_PLACE_SPREAD,
     .fits = true, .ngl = 3, .n_used = 1, .used = {{0, 0, 3, 9}}},

    /* --- fits nowhere */
    {.name = "plain 20 GiB on 8+8 best fit: a plain size is not split",
     .n_dev = 2, .dev = {{8}, {8}}, .size_g = 20,
     .fits = false, .reason_has = {"does not fit on one GPU", "20.00 GiB", "GPU 0", "16.00 GiB"}},
    {.name = "plain 20 GiB on 8+8 with --gpus 2: 16 < 20",
     .n_dev = 2, .dev = {{8}, {8}}, .size_g = 20, .gpus = 2,
     .fits = false, .reason_has = {"does not fit on 2 GPUs"}},
    {.name = "no GPU at all",
     .n_dev = 0, .size_g = 1, .fits = false, .reason_has = {"no usable GPU", "no GPU found"}},
    {.name = "--gpus 3 with two usable",
     .n_dev = 3, .dev = {{24}, {24}, {24, 0, GW_DEVICE_LOST}}, .size_g = 1, .gpus = 3,
     .fits = false, .n_excluded = 1, .excluded = {2}, .reason_has = {"needs 3 GPUs, only 2 usable", "lost"}},

    /* --- a lost / stale / hot GPU is never chosen */
    {.name = "lost 24 excluded: 10 GiB goes to the 12",
     .n_dev = 2, .dev = {{24, 0, GW_DEVICE_LOST}, {12}}, .size_g = 10,
     .fits = true, .n_used = 1, .used = {{1, 0, 0, 10}}, .n_excluded = 1, .excluded = {0}},
    {.name = "lost 24 excluded: 20 GiB fits nowhere, the reason names the lost GPU",
     .n_dev = 2, .dev = {{24, 0, GW_DEVICE_LOST}, {12}}, .size_g = 20,
     .fits = false, .n_excluded = 1, .excluded = {0}, .reason_has = {"GPU 0: lost"}},
    {.name = "stale and no-reading GPUs excluded",
     .n_dev = 3, .dev = {{12, 0, GW_DEVICE_STALE}, {12, 0, GW_DEVICE_OK, 0, 0, true}, {12}},
     .size_g = 4, .fits = true, .n_used = 1, .used = {{2, 0, 0, 4}}, .n_excluded = 2,
     .excluded = {0, 1}},
    {.name = "over its slowdown temperature: excluded",
     .n_dev = 2, .dev = {{12, 0, GW_DEVICE_OK, 90, 85}, {24}}, .size_g = 4,
     .fits = true, .n_used = 1, .used = {{1, 0, 0, 4}}, .n_excluded = 1, .excluded = {0},
     .reason_has = {NULL}},
    {.name = "--max-temp 80 excludes a 82 C GPU without a device limit",
     .n_dev = 2, .dev = {{12, 0, GW_DEVICE_OK, 82, 0}, {24}}, .size_g = 4, .max_temp_c = 80,
     .fits = true, .n_used = 1, .used = {{1, 0, 0, 4}}, .n_excluded = 1, .excluded = {0}},

    /* --- reservations already holding memory */
    {.name = "20 GiB reserved on the 24: a 10 GiB need goes to the 16",
     .n_dev = 2, .dev = {{24, 20}, {16}}, .size_g = 10,
     .fits = true, .n_used = 1, .used = {{1, 0, 0, 10}}},
    {.name = "20 GiB reserved on the 24: a 3 GiB need fits its 4 GiB left (best fit)",
     .n_dev = 2, .dev = {{24, 20}, {16}}, .size_g = 3,
     .fits = true, .n_used = 1, .used = {{0, 0, 0, 3}}},
    {.name = "reservation holds all but 0.5 GiB, overhead 1 GiB: excluded for no room",
     .n_dev = 2, .dev = {{24, 23.5}, {8}}, .n_units = 4, .units_same_g = 1, .overhead_g = 1,
     .fits = true, .ngl = 4, .n_used = 1, .used = {{1, 0, 4, 5}}, .n_excluded = 1,
     .excluded = {0}, .excluded_has = "no room: 24.00 GiB free - 23.50 GiB reserved - 0 B margin "
                                      "leaves 512.0 MiB, overhead is 1.00 GiB"},

    /* --- --gpus N and explicit lists */
    {.name = "--gpus 2 on 24,12,16,8 for 20 GiB: first window in cap order 8+12 holds it",
     .n_dev = 4, .dev = {{24}, {12}, {16}, {8}}, .size_g = 20, .gpus = 2,
     .fits = true, .n_used = 2, .used = {{1, 0, 0, 12}, {3, 0, 0, 8}}},
    {.name = "--gpus 1 is plain best fit",
     .n_dev = 3, .dev = {{24}, {12}, {16}}, .size_g = 13, .gpus = 1,
     .fits = true, .n_used = 1, .used = {{2, 0, 0, 13}}},
    {.name = "list 2,0 for 20 x 1 GiB on 24,12,12: in list order, 7 (6.67 rounded) then 13",
     .n_dev = 3, .dev = {{24}, {12}, {12}}, .n_units = 20, .units_same_g = 1,
     .policy = GW_PLACE_LIST, .n_list = 2, .list = {2, 0},
     .fits = true, .ngl = 20, .n_used = 2, .used = {{2, 0, 7, 7}, {0, 7, 13, 13}}},
    {.name = "a listed lost GPU fails the plan, naming it",
     .n_dev = 2, .dev = {{24}, {12, 0, GW_DEVICE_LOST}}, .size_g = 1,
     .policy = GW_PLACE_LIST, .n_list = 2, .list = {0, 1},
     .fits = false, .n_excluded = 1, .excluded = {1}, .reason_has = {"GPU 1 in the device list"}},
};

static void fill_devices(const pcase *c, gw_place_device *d)
{
    for (size_t i = 0; i < c->n_dev; i++) {
        const dspec *s = &c->dev[i];
        memset(&d[i], 0, sizeof d[i]);
        snprintf(d[i].uuid, sizeof d[i].uuid, "GPU-test-%zu", i);
        d[i].index = (uint32_t)i;
        d[i].state = s->state;
        d[i].has_free = !s->no_free;
        d[i].free = G(s->free_g);
        d[i].total = G(s->free_g);
        d[i].pending = G(s->pending_g);
        if (s->temp_c) {
            d[i].has_temp = true;
            d[i].temp_mc = (int32_t)(s->temp_c * 1000);
        }
        if (s->limit_c) {
            d[i].has_temp_limit = true;
            d[i].temp_limit_mc = (int32_t)(s->limit_c * 1000);
        }
    }
}

static void run_case(const pcase *c)
{
    gw_place_device devs[8];
    fill_devices(c, devs);
    uint64_t units[48];
    for (size_t j = 0; j < c->n_units; j++)
        units[j] = G(c->units_same_g ? c->units_same_g : c->unit_g[j]);
    gw_place_need need = {.size = G(c->size_g), .n_units = c->n_units, .unit_bytes = units,
                          .overhead = G(c->overhead_g), .host_bytes = G(c->host_g),
                          .allow_partial = c->partial};
    gw_place_opts o;
    gw_place_opts_init(&o);
    o.policy = c->policy;
    o.margin = G(c->margin_g);
    o.gpus = c->gpus;
    o.list = c->list;
    o.n_list = c->n_list;
    o.max_temp_mc = (int32_t)(c->max_temp_c * 1000);
    gw_plan p;
    gw_plan_init(&p);
    gw_error err;
    gw_error_clear(&err);
    print_message("case: %s\n", c->name);
    assert_int_equal(gw_place(devs, c->n_dev, &need, &o, &p, &err), GW_OK);
    if (p.fits != c->fits)
        fail_msg("%s: fits %d, expected %d (reason: %s)", c->name, p.fits, c->fits, p.reason);
    assert_int_equal(p.partial, c->is_partial);
    if (c->fits) {
        assert_int_equal(p.ngl, c->ngl);
        if (p.n_used != c->n_used)
            fail_msg("%s: %zu devices used, expected %zu", c->name, p.n_used, c->n_used);
        uint64_t sum = 0;
        for (size_t i = 0; i < c->n_used; i++) {
            assert_int_equal(p.used[i].device, c->used[i].dev);
            assert_int_equal(p.used[i].n_units, c->used[i].n_units);
            if (c->n_units)
                assert_int_equal(p.used[i].first_unit, c->used[i].first);
            assert_true(p.used[i].bytes == G(c->used[i].bytes_g));
            /* invariant 1: never over a device's usable memory */
            assert_true(p.used[i].bytes <= gw_place_usable(&devs[p.used[i].device], o.margin));
            sum += p.used[i].bytes;
        }
        assert_true(p.gpu_bytes == sum);
        assert_true(p.host_bytes == G(c->host_bytes_g));
    } else {
        assert_int_equal(p.n_used, 0);
        assert_true(strlen(p.reason) > 0);
    }
    assert_int_equal(p.n_excluded, c->n_excluded);
    for (size_t i = 0; i < c->n_excluded; i++)
        assert_int_equal(p.excluded[i].device, c->excluded[i]);
    if (c->excluded_has)
        assert_string_equal(p.excluded[0].reason, c->excluded_has);
    for (size_t i = 0; i < 4 && c->reason_has[i]; i++)
        if (!strstr(p.reason, c->reason_has[i]))
            fail_msg("%s: reason \"%s\" lacks \"%s\"", c->name, p.reason, c->reason_has[i]);
    gw_plan_release(&p);
}

static void placement_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
}

/* Bad input is an error naming it, and the plan stays empty. */
static void bad_input_is_rejected(void **state)
{
    (void)state;
    gw_place_device d[1] = {{.uuid = "a", .has_free = true, .free = G(8)}};
    gw_plan p;
    gw_plan_init(&p);
    gw_error err;
    gw_place_need zero = {0};
    assert_int_equal(gw_place(d, 1, &zero, NULL, &p, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "empty"));
    assert_false(p.fits);
    gw_place_need no_sizes = {.n_units = 3};
    assert_int_equal(gw_place(d, 1, &no_sizes, NULL, &p, &err), GW_EINVAL);
    uint64_t big[2] = {UINT64_MAX, 1};
    gw_place_need over = {.n_units = 2, .unit_bytes = big};
    assert_int_equal(gw_place(d, 1, &over, NULL, &p, &err), GW_ERANGE);
    gw_place_opts o;
    gw_place_opts_init(&o);
    o.policy = GW_PLACE_LIST;
    uint32_t list[2] = {0, 5};
    o.list = list;
    o.n_list = 2;
    gw_place_need one = {.size = 1};
    assert_int_equal(gw_place(d, 1, &one, &o, &p, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "device 5"));
    list[1] = 0;
    assert_int_equal(gw_place(d, 1, &one, &o, &p, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "twice"));
    list[1] = 1;
    gw_place_device d2[2] = {d[0], d[0]};
    o.gpus = 3;
    assert_int_equal(gw_place(d2, 2, &one, &o, &p, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "3 GPUs"));
    o.gpus = 0;
    o.n_list = 0;
    assert_int_equal(gw_place(d, 1, &one, &o, &p, &err), GW_EINVAL);
    gw_plan_release(&p);
}

/* The tensor split reproduces the plan under llama.cpp's rule: layer il
 * (0-based among offloaded) goes to upper_bound(cum_split, il / act). */
static void tensor_split_reproduces_layers(void **state)
{
    (void)state;
    gw_place_device d[3];
    const double free_g[3] = {24, 12, 10};
    for (int i = 0; i < 3; i++) {
        memset(&d[i], 0, sizeof d[i]);
        snprintf(d[i].uuid, sizeof d[i].uuid, "u%d", i);
        d[i].index = (uint32_t)i;
        d[i].has_free = true;
        d[i].free = G(free_g[i]);
    }
    uint64_t units[81];
    for (int j = 0; j < 81; j++)
        units[j] = G(0.5) + (uint64_t)j * MIB;
    gw_place_need need = {.n_units = 81, .unit_bytes = units, .overhead = G(0.5)};
    gw_place_opts o;
    gw_place_opts_init(&o);
    o.policy = GW_PLACE_SPREAD;
    gw_plan p;
    gw_plan_init(&p);
    gw_error err;
    assert_int_equal(gw_place(d, 3, &need, &o, &p, &err), GW_OK);
    assert_true(p.fits);
    uint32_t act = p.ngl, start = 81 - p.ngl;
    float cum[3];
    float sum = 0;
    for (size_t i = 0; i < p.n_used; i++)
        sum += (float)p.used[i].n_units;
    float run = 0;
    for (size_t i = 0; i < p.n_used; i++) {
        run += (float)p.used[i].n_units;
        cum[i] = run / sum;
    }
    for (uint32_t il = start; il < 81; il++) {
        float x = (float)(il - start) / (float)act;
        size_t dev = 0;
        while (dev < p.n_used && !(cum[dev] > x))
            dev++;
        assert_true(dev < p.n_used);
        assert_true(il >= p.used[dev].first_unit &&
                    il < p.used[dev].first_unit + p.used[dev].n_units);
    }
    gw_plan_release(&p);
}

static void sizes_parse_and_format(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_true(gw_place_parse_size("20GiB", &v));
    assert_true(v == 20ull << 30);
    assert_true(gw_place_parse_size("1.5G", &v));
    assert_true(v == 3ull << 29);
    assert_true(gw_place_parse_size("512MiB", &v));
    assert_true(v == 512ull << 20);
    assert_true(gw_place_parse_size("10GB", &v));
    assert_true(v == 10000000000ull);
    assert_true(gw_place_parse_size("18446744073709551615", &v));
    assert_true(v == UINT64_MAX);
    v = 7;
    assert_false(gw_place_parse_size("", &v));
    assert_false(gw_place_parse_size("GiB", &v));
    assert_false(gw_place_parse_size("12 parsecs", &v));
    assert_false(gw_place_parse_size("1.5", &v)); /* half a byte */
    assert_false(gw_place_parse_size("20000000000GiB", &v));
    assert_false(gw_place_parse_size("-1GiB", &v));
    assert_int_equal(v, 7);
    char buf[32];
    assert_string_equal(gw_place_format_size(3ull << 29, buf, sizeof buf), "1.50 GiB");
    assert_string_equal(gw_place_format_size(512ull << 20, buf, sizeof buf), "512.0 MiB");
}

/* The plan's JSON carries the split and the exclusions. */
static void plan_json_shape(void **state)
{
    (void)state;
    gw_place_device d[2] = {{.uuid = "GPU-a", .has_free = true, .free = G(24)},
                            {.uuid = "GPU-b", .index = 1, .state = GW_DEVICE_LOST}};
    uint64_t units[4] = {G(1), G(1), G(1), G(1)};
    gw_place_need need = {.n_units = 4, .unit_bytes = units};
    gw_plan p;
    gw_plan_init(&p);
    gw_error err;
    assert_int_equal(gw_place(d, 2, &need, NULL, &p, &err), GW_OK);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_json j;
    gw__json_init(&j, &sb, false);
    gw_place_plan_json(&j, &p, d);
    assert_false(sb.failed);
    assert_non_null(strstr(sb.data, "\"fits\":true"));
    assert_non_null(strstr(sb.data, "\"ngl\":4"));
    assert_non_null(strstr(sb.data, "\"tensor_split\":[4]"));
    assert_non_null(strstr(sb.data, "\"uuid\":\"GPU-a\""));
    assert_non_null(strstr(sb.data, "\"excluded\":[{\"index\":1,\"uuid\":\"GPU-b\",\"reason\":\"lost\"}]"));
    gw__strbuf_release(&sb);
    gw_plan_release(&p);
}

/* refine: the last used device needs ctx GiB more than the profile says */
static int last_needs_more(void *ctx, const gw_place_device *devs, const gw_plan *plan,
                           uint64_t *bytes, gw_error *err)
{
    (void)devs;
    (void)err;
    double more = *(const double *)ctx;
    for (size_t i = 0; i < plan->n_used; i++)
        bytes[i] = plan->used[i].bytes + (i + 1 == plan->n_used ? G(more) : 0);
    return GW_OK;
}

/* refine: the last used device always needs 1 GiB more than it has */
static int last_always_short(void *ctx, const gw_place_device *devs, const gw_plan *plan,
                             uint64_t *bytes, gw_error *err)
{
    (void)ctx;
    (void)devs;
    (void)err;
    for (size_t i = 0; i < plan->n_used; i++)
        bytes[i] = i + 1 == plan->n_used ? plan->used[i].usable + G(1) : plan->used[i].bytes;
    return GW_OK;
}

static int refine_fails(void *ctx, const gw_place_device *devs, const gw_plan *plan,
                        uint64_t *bytes, gw_error *err)
{
    (void)ctx;
    (void)devs;
    (void)plan;
    (void)bytes;
    return gw__error_set(err, GW_ERANGE, "estimator says no");
}

static void refine_checks_the_exact_split(void **state)
{
    (void)state;
    gw_place_device d[2];
    for (int i = 0; i < 2; i++) {
        memset(&d[i], 0, sizeof d[i]);
        snprintf(d[i].uuid, sizeof d[i].uuid, "u%d", i);
        d[i].index = (uint32_t)i;
        d[i].has_free = true;
        d[i].free = G(12);
    }
    uint64_t units[20];
    for (int j = 0; j < 20; j++)
        units[j] = G(1);
    double more = 0.5;
    gw_place_need need = {.n_units = 20, .unit_bytes = units, .allow_partial = true,
                          .refine = last_needs_more, .refine_ctx = &more};
    gw_plan p;
    gw_plan_init(&p);
    gw_error err;
    /* 20 x 1 GiB on 12+12: split 10/10; exact 10 and 10.5 fit: they become the use */
    assert_int_equal(gw_place(d, 2, &need, NULL, &p, &err), GW_OK);
    assert_true(p.fits);
    assert_int_equal(p.n_used, 2);
    assert_int_equal(p.used[0].n_units, 10);
    assert_true(p.used[0].bytes == G(10) && p.used[1].bytes == G(10.5));
    assert_true(p.gpu_bytes == G(20.5));
    /* +2.5 GiB on the last GPU: 10/10 gives 12.5 there; holding back 0.5,
     * 1.0, 1.5 GiB on GPU 1 moves the proportional targets (20*12/23.5 =
     * 10.21, 10.43, then 20*12/22.5 = 10.67 takes the 11th layer): 11/9,
     * exact 11 and 9 + 2.5 = 11.5: fits */
    more = 2.5;
    assert_int_equal(gw_place(d, 2, &need, NULL, &p, &err), GW_OK);
    assert_true(p.fits);
    assert_int_equal(p.used[0].n_units, 11);
    assert_int_equal(p.used[1].n_units, 9);
    assert_true(p.used[0].bytes == G(11) && p.used[1].bytes == G(11.5));
    /* never enough: gives up after its rounds, saying how much was missing */
    need.refine = last_always_short;
    assert_int_equal(gw_place(d, 2, &need, NULL, &p, &err), GW_OK);
    assert_false(p.fits);
    assert_int_equal(p.n_used, 0);
    if (!strstr(p.reason, "still needs 1.00 GiB more on GPU 1"))
        fail_msg("reason: %s", p.reason);
    need.refine = refine_fails;
    assert_int_equal(gw_place(d, 2, &need, NULL, &p, &err), GW_ERANGE);
    assert_false(p.fits);
    gw_plan_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(placement_table),
        cmocka_unit_test(bad_input_is_rejected),
        cmocka_unit_test(tensor_split_reproduces_layers),
        cmocka_unit_test(sizes_parse_and_format),
        cmocka_unit_test(plan_json_shape),
        cmocka_unit_test(refine_checks_the_exact_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
