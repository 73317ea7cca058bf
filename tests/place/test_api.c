/* test_api.c — the placement endpoints as functions: statuses and bodies of
 * plan / reserve (Idempotency-Key) / list / get / delete / renew / health,
 * strict request parsing, and the model-directory rule. The snapshot is
 * built by hand: two GPUs, 24 GiB and 12 GiB free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "place/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIB (1ull << 30)

typedef struct fx {
    char dir[128], db[200], models[200];
    gw_device devs[2];
    gw_snapshot snap;
    gw_place_api *api;
    gw_strbuf out;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gw-api-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof f->db, "%s/ledger.db", f->dir);
    snprintf(f->models, sizeof f->models, "%s/models", f->dir);
    mkdir(f->models, 0755);
    const uint64_t free_b[2] = {24 * GIB, 12 * GIB};
    for (int i = 0; i < 2; i++) {
        gw_device *d = &f->devs[i];
        d->info.index = (uint32_t)i;
        d->info.vendor = GW_VENDOR_NVIDIA;
        snprintf(d->info.uuid, sizeof d->info.uuid, "GPU-%c", 'a' + i);
        d->sample.valid = (1u << GW_METRIC_MEM_FREE) | (1u << GW_METRIC_MEM_TOTAL);
        d->sample.mem_free = d->sample.mem_total = free_b[i];
    }
    f->snap.n_devices = 2;
    f->snap.devices = f->devs;
    const char *dirs[1] = {f->models};
    gw_place_api_config cfg = {.ledger_path = f->db, .model_dirs = dirs, .n_model_dirs = 1};
    gw_error err;
    if (gw_place_api_open(&f->api, &cfg, &err) != GW_OK)
        return -1;
    gw__strbuf_init(&f->out, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    gw_place_api_close(f->api);
    gw__strbuf_release(&f->out);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static const char *body(fx *f) { return f->out.data ? f->out.data : ""; }

static int plan(fx *f, const char *json)
{
    gw__strbuf_reset(&f->out);
    return gw_place_api_plan(f->api, &f->snap, json, strlen(json), &f->out);
}

static int reserve(fx *f, const char *json, const char *key)
{
    gw__strbuf_reset(&f->out);
    return gw_place_api_reserve(f->api, &f->snap, json, strlen(json), key, &f->out);
}

static long long id_of(fx *f)
{
    const char *p = strstr(body(f), "\"reservation\":{\"id\":");
    assert_non_null(p);
    return atoll(p + strlen("\"reservation\":{\"id\":"));
}

static void has(fx *f, const char *s)
{
    if (!strstr(body(f), s))
        fail_msg("body %s lacks %s", body(f), s);
}

static void plan_endpoint(void **state)
{
    fx *f = *state;
    assert_int_equal(plan(f, "{\"mem\":\"10GiB\"}"), 200);
    has(f, "\"fits\":true");
    has(f, "\"uuid\":\"GPU-b\""); /* best fit: the 12 GiB GPU */
    assert_int_equal(plan(f, "{\"mem\":\"40GiB\"}"), 409);
    has(f, "\"fits\":false");
    has(f, "40.00 GiB");
    assert_int_equal(plan(f, "{\"layers\":30,\"layer_size\":\"1GiB\",\"policy\":\"spread\"}"), 200);
    has(f, "\"tensor_split\":[21,10]"); /* 31 x 1 GiB by 24:12: target 20.67 -> 21 / 10 */
    assert_int_equal(plan(f, "{\"mem\":\"1GiB\",\"memory\":5}"), 400);
    has(f, "unknown member \\\"memory\\\"");
    assert_int_equal(plan(f, "{\"mem\":-3}"), 400);
    has(f, "bad value for \\\"mem\\\"");
    assert_int_equal(plan(f, "not json"), 400);
    assert_int_equal(plan(f, "[1]"), 400);
    assert_int_equal(plan(f, "{}"), 400);
    has(f, "no memory need");
    assert_int_equal(plan(f, "{\"mem\":\"1GiB\",\"devices\":[\"GPU-a\",1]}"), 200);
    has(f, "\"policy\":\"list\"");
    assert_int_equal(plan(f, "{\"mem\":\"1GiB\",\"owner\":\"x\"}"), 400); /* reserve-only member */
}

static void reserve_list_get_delete_renew(void **state)
{
    fx *f = *state;
    assert_int_equal(reserve(f, "{\"mem\":\"10GiB\",\"owner\":\"t\",\"lease_s\":60}", "k1"), 201);
    has(f, "\"replayed\":false");
    has(f, "\"owner\":\"t\"");
    long long a = id_of(f);
    assert_int_equal(reserve(f, "{\"mem\":\"10GiB\",\"owner\":\"t\",\"lease_s\":60}", "k1"), 200);
    has(f, "\"replayed\":true");
    assert_int_equal(id_of(f), a);
    /* the 12 has 2 GiB left, so the next two go to the 24 */
    assert_int_equal(reserve(f, "{\"mem\":\"10GiB\"}", NULL), 201);
    has(f, "\"uuid\":\"GPU-a\"");
    assert_int_equal(reserve(f, "{\"mem\":\"10GiB\",\"key\":\"k2\"}", NULL), 201);
    long long c = id_of(f);
    assert_int_equal(reserve(f, "{\"mem\":\"10GiB\"}", NULL), 409);
    has(f, "\"reservation\":null");
    has(f, "20.00 GiB reserved");

    gw__strbuf_reset(&f->out);
    assert_int_equal(gw_place_api_list(f->api, &f->out), 200);
    assert_non_null(strstr(body(f), "\"reservations\":[{"));
    int n = 0;
    for (const char *p = body(f); (p = strstr(p, "\"created_ns\"")); p++)
        n++;
    assert_int_equal(n, 3);

    char id[32];
    snprintf(id, sizeof id, "%lld", c);
    gw__strbuf_reset(&f->out);
    assert_int_equal(gw_place_api_get(f->api, id, &f->out), 200);
    has(f, "\"key\":\"k2\"");
    gw__strbuf_reset(&f->out);
    assert_int_equal(gw_place_api_get(f->api, "999", &f->out), 404);
    gw__strbuf_reset(&f->out);
    assert_int_equal(gw_place_api_get(f->api, "abc", &f->out), 400);
    const char *renew = "{\"lease_s\":120}";
    gw__strbuf_reset(&f->out);
    assert_int_equal(gw_place_api_renew(f->api, id, renew, strlen(renew), &f->out), 200);
    has(f, "\"expires_ns\":");
    const char *bad = "{\"lease\":1}";
    gw__strbuf_reset(&f->out);
    assert_int_equal(gw_place_api_renew(f->api, id, bad, strlen(bad), &f->out), 400);
    /* hand over to another owner pid (what gpuwatch run does after fork) */
    char handover[48];
    snprintf(handover, sizeof handover, "{\"pid\":%d}", (int)getppid());
    gw__strbuf_reset(&f->out);
    assert_int_equal(gw_place_api_renew(f->api, id, handover, strlen(handover), &f->out), 200);
    char want_pid[40];
    snprintf(want_pid, sizeof want_pid, "\"pid\":%d", (int)getppid());
    has(f, want_pid);
    static const char *const bad_pids[] = {"{\"pid\":0}", "{\"pid\":-3}", "{\"pid\":\"1\"}",
                                           "{\"pid\":4294967296}", "{\"pid\":1,\"x\":1}", "{}"};
    for (size_t i = 0; i < sizeof bad_pids / sizeof bad_pids[0]; i++) {
        gw__strbuf_reset(&f->out);
        assert_int_equal(gw_place_api_renew(f->api, id, bad_pids[i], strlen(bad_pids[i]), &f->out),
                         400);
    }

    gw_json j;
    gw__strbuf_reset(&f->out);
    gw__json_init(&j, &f->out, false);
    gw_place_api_health(f->api, &f->snap, &j);
    has(f, "\"strategy\":\"best-fit\"");
    /* GPU-b's one 10 GiB reservation has no process using the GPU yet: all
     * of it is pending (what a cluster plan on this node counts) */
    has(f, "{\"index\":1,\"uuid\":\"GPU-b\",\"pending_bytes\":10737418240,"
           "\"reservations\":[{\"id\":");

    gw__strbuf_reset(&f->out);
    assert_int_equal(gw_place_api_delete(f->api, id, &f->out), 200);
    gw__strbuf_reset(&f->out);
    assert_int_equal(gw_place_api_delete(f->api, id, &f->out), 404);
    assert_int_equal(reserve(f, "{\"mem\":\"10GiB\"}", NULL), 201); /* room again */
}

static void model_directory_rule(void **state)
{
    fx *f = *state;
    char outside[300], inside[300], req[700];
    snprintf(outside, sizeof outside, "%s/x.gguf", f->dir);
    snprintf(inside, sizeof inside, "%s/m.gguf", f->models);
    FILE *fp = fopen(outside, "w");
    fputs("GGUF", fp);
    fclose(fp);
    fp = fopen(inside, "w");
    fputs("not a gguf file at all", fp);
    fclose(fp);
    snprintf(req, sizeof req, "{\"model\":\"%s\"}", outside);
    assert_int_equal(plan(f, req), 403);
    has(f, "not under a configured model directory");
    snprintf(req, sizeof req, "{\"model\":\"%s/../x.gguf\"}", f->models);
    assert_int_equal(plan(f, req), 403);
    /* inside: it gets as far as the GGUF reader, which refuses the file */
    snprintf(req, sizeof req, "{\"model\":\"%s\"}", inside);
    int status = plan(f, req);
    assert_true(status == 400 || status == 500);
    assert_null(strstr(body(f), "model directory"));
}

/* Snapshot -> planner devices, and the launch environment of a plan. */
static void snapshot_devices_and_env(void **state)
{
    (void)state;
    gw_device devs[3];
    memset(devs, 0, sizeof devs);
    devs[0].info.index = 0;
    devs[0].info.vendor = GW_VENDOR_NVIDIA;
    gw__strlcpy(devs[0].info.uuid, "GPU-x", sizeof devs[0].info.uuid);
    devs[0].sample.valid = (1u << GW_METRIC_MEM_FREE) | (1u << GW_METRIC_TEMP);
    devs[0].sample.mem_free = 8 * GIB;
    devs[0].sample.temp_mc = 70000;
    devs[0].info.valid = (1u << GW_INFO_TEMP_SLOWDOWN) | (1u << GW_INFO_MEMORY_TOTAL);
    devs[0].info.temp_slowdown_mc = 88000;
    devs[0].info.memory_total = 12 * GIB;
    devs[1].info.index = 1;
    devs[1].info.source_index = 4;
    devs[1].info.vendor = GW_VENDOR_NVIDIA; /* no uuid: selected by index */
    devs[1].sample.valid = 1u << GW_METRIC_MEM_FREE;
    devs[1].sample.mem_free = 8 * GIB;
    devs[2].info.index = 2;
    devs[2].info.source_index = 1;
    devs[2].info.vendor = GW_VENDOR_AMD;
    devs[2].state = GW_DEVICE_STALE; /* no reading either */
    gw_snapshot snap = {.n_devices = 3, .devices = devs};
    gw_place_device d[3];
    gw_place_devices_from_snapshot(&snap, d);
    assert_string_equal(d[0].uuid, "GPU-x");
    assert_true(d[0].has_free && d[0].free == 8 * GIB && d[0].total == 12 * GIB);
    assert_true(d[0].has_temp && d[0].temp_mc == 70000);
    assert_true(d[0].has_temp_limit && d[0].temp_limit_mc == 88000);
    assert_string_equal(d[1].uuid, "index:1");
    assert_int_equal(d[1].source_index, 4);
    assert_false(d[2].has_free);
    assert_int_equal(d[2].state, GW_DEVICE_STALE);
    assert_true(gw_place_usable(&d[2], 0) == 0);

    /* a plan over both NVIDIA GPUs and an AMD one (state forced ok here) */
    d[2].state = GW_DEVICE_OK;
    d[2].has_free = true;
    d[2].free = 8 * GIB;
    gw_plan plan;
    gw_plan_init(&plan);
    gw_place_opts o;
    gw_place_opts_init(&o);
    o.policy = GW_PLACE_SPREAD;
    gw_place_need need = {.size = 6 * GIB};
    gw_error err;
    assert_int_equal(gw_place(d, 3, &need, &o, &plan, &err), GW_OK);
    assert_int_equal(plan.n_used, 3);
    char *env[3] = {0};
    size_t n = gw_place_plan_env(&plan, d, env);
    assert_int_equal(n, 2);
    assert_string_equal(env[0], "CUDA_VISIBLE_DEVICES=GPU-x,4");
    assert_string_equal(env[1], "HIP_VISIBLE_DEVICES=1");
    for (size_t i = 0; i < n; i++)
        free(env[i]);
    /* llama flags: a plain size adds none; a layer plan adds -ngl and -ts */
    char *argv0[] = {"/opt/llama/llama-server", "-m", "x.gguf", NULL};
    char **v = gw_place_build_argv(3, argv0, &plan, 0);
    assert_null(v[3]);
    gw_place_argv_free(v, 3);
    uint64_t units[6] = {GIB, GIB, GIB, GIB, GIB, GIB};
    gw_place_need layers = {.n_units = 6, .unit_bytes = units};
    assert_int_equal(gw_place(d, 3, &layers, &o, &plan, &err), GW_OK);
    v = gw_place_build_argv(3, argv0, &plan, 2048);
    assert_string_equal(v[3], "-ngl");
    assert_string_equal(v[4], "6");
    assert_string_equal(v[5], "--tensor-split");
    assert_string_equal(v[6], "2,2,2");
    assert_string_equal(v[7], "-c");
    assert_string_equal(v[8], "2048");
    assert_null(v[9]);
    gw_place_argv_free(v, 3);
    char *mine[] = {"llama-cli", "--n-gpu-layers=3", "-ts", "1,1", "--ctx-size", "512", NULL};
    v = gw_place_build_argv(6, mine, &plan, 2048);
    assert_null(v[6]);
    gw_place_argv_free(v, 6);
    char *other[] = {"python3", "train.py", NULL};
    v = gw_place_build_argv(2, other, &plan, 2048);
    assert_null(v[2]);
    gw_place_argv_free(v, 2);
    gw_plan_release(&plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(plan_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(reserve_list_get_delete_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(model_directory_rule, setup, teardown),
        cmocka_unit_test(snapshot_devices_and_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
