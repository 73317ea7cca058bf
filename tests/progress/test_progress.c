/* test_progress.c — src/progress: validation, rate/ETA, the start-keeping
 * stamp, the JSON codec (round trip, every prefix, named errors), the
 * bounded table, and the directory store (atomic replace, stale files by
 * TTL and by pid, folder ownership and permission refusals). Times are
 * given, never read from the clock, so nothing here depends on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "progress/progress.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S 1000000000LL
#define T0 (1700000000LL * S)

static gw_progress rec(const char *job, const char *gpu, uint64_t done, uint64_t total)
{
    gw_progress p;
    gw_error err;
    assert_int_equal(gw_progress_fill(&p, job, gpu, done, total, "steps", "epoch 1", 0, &err),
                     GW_OK);
    return p;
}

static void validation_names_the_field(void **state)
{
    (void)state;
    gw_progress p;
    gw_error err;
    assert_int_equal(gw_progress_fill(&p, "a b", "0", 1, 2, NULL, NULL, 0, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "job 'a b'"));
    assert_int_equal(gw_progress_fill(&p, "", "0", 1, 2, NULL, NULL, 0, &err), GW_EINVAL);
    assert_int_equal(gw_progress_fill(&p, "j", "GPU 0", 1, 2, NULL, NULL, 0, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "gpu"));
    assert_int_equal(gw_progress_fill(&p, "j", "0", 3, 2, NULL, NULL, 0, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "done 3 is more than total 2"));
    assert_int_equal(gw_progress_fill(&p, "j", "0", 3, 0, NULL, NULL, 0, &err), GW_OK);
    assert_int_equal(gw_progress_fill(&p, "j", "0", 1, 2, NULL, "a\x1b[2Jb", 0, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "message"));
    assert_int_equal(gw_progress_fill(&p, "j", "0", 1, 2, "\xff", NULL, 0, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "unit"));
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(gw_progress_fill(&p, "j", "0", 1, 2, NULL, big, 0, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "message: longer than 127"));
    big[64] = 0;
    assert_int_equal(gw_progress_fill(&p, big, "0", 1, 2, NULL, NULL, 0, &err), GW_EINVAL);
    assert_int_equal(gw_progress_fill(&p, "j.1_x-2", "MIG-GPU-aa/1/0", 1, 2, "tokens",
                                      "caf\xc3\xa9 \xe2\x9c\x93", 7, &err), GW_OK);
    assert_true(gw_progress_check(&p));
    /* overlong encodings and surrogates are not UTF-8 */
    assert_false(gw_progress_text_valid("\xc0\xaf"));
    assert_false(gw_progress_text_valid("\xed\xa0\x80"));
    assert_false(gw_progress_text_valid("\x7f"));
}

static void rate_and_eta(void **state)
{
    (void)state;
    gw_progress p = rec("j", "0", 0, 1000);
    gw_progress_stamp(&p, NULL, T0);
    assert_true(gw_progress_rate(&p) < 0); /* one report: no rate */
    assert_true(gw_progress_eta(&p) < 0);
    gw_progress q = rec("j", "0", 250, 1000);
    gw_progress_stamp(&q, &p, T0 + 10 * S);
    assert_int_equal(q.started_ns, T0);
    assert_int_equal(q.start_done, 0);
    assert_true(gw_progress_rate(&q) == 25.0);
    assert_true(gw_progress_eta(&q) == 30.0);
    gw_progress done = rec("j", "0", 1000, 1000);
    gw_progress_stamp(&done, &q, T0 + 20 * S);
    assert_true(gw_progress_eta(&done) == 0.0);
    /* unknown total (past the earlier one): rate but no ETA */
    gw_progress u = rec("j", "0", 1500, 0);
    gw_progress_stamp(&u, &q, T0 + 20 * S);
    assert_int_equal(u.total, 0);
    assert_true(gw_progress_rate(&u) == 75.0);
    assert_true(gw_progress_eta(&u) < 0);
    /* a report without unit or total keeps the earlier ones */
    gw_progress k;
    gw_error err;
    assert_int_equal(gw_progress_fill(&k, "j", "0", 600, 0, NULL, NULL, 0, &err), GW_OK);
    gw_progress_stamp(&k, &q, T0 + 20 * S);
    assert_int_equal(k.total, 1000);
    assert_string_equal(k.unit, "steps");
    assert_string_equal(k.message, "");
    /* went backwards (a restart): this report starts the job again */
    gw_progress back = rec("j", "0", 10, 1000);
    gw_progress r2 = q;
    r2.start_done = 100;
    gw_progress_stamp(&back, &r2, T0 + 30 * S);
    assert_int_equal(back.started_ns, T0 + 30 * S);
    assert_int_equal(back.start_done, 10);
    /* another GPU's record never lends its start */
    gw_progress other = rec("j", "1", 300, 1000);
    gw_progress_stamp(&other, &q, T0 + 30 * S);
    assert_int_equal(other.started_ns, T0 + 30 * S);
    /* a stalled job: rate 0, ETA unknown */
    gw_progress st = rec("j", "0", 0, 10);
    gw_progress_stamp(&st, &p, T0 + 5 * S);
    assert_true(gw_progress_rate(&st) == 0.0);
    assert_true(gw_progress_eta(&st) < 0);
}

static void json_round_trip(void **state)
{
    (void)state;
    gw_progress p;
    gw_error err;
    assert_int_equal(gw_progress_fill(&p, "train-7", "GPU-0123abcd-0000-1111-2222-333344445555",
                                      42, 100, "samples", "say \"hi\" \\ caf\xc3\xa9", 1234, &err),
                     GW_OK);
    gw_progress q = p;
    gw_progress_stamp(&p, NULL, T0 + 123456789);
    gw_progress_stamp(&q, &p, T0 + 5 * S + 987654321);
    q.done = 42;
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw_progress_to_json(&q, true, &sb);
    assert_false(sb.failed);
    assert_non_null(strstr(sb.data, "\"started\":1700000000.123456"));
    assert_non_null(strstr(sb.data, "\"updated\":1700000005.987654"));
    gw_progress back;
    assert_int_equal(gw_progress_from_json(sb.data, sb.len, &back, &err), GW_OK);
    assert_memory_equal(&back, &q, sizeof q);
    /* every proper prefix is refused, never read past */
    for (size_t n = 0; n < sb.len; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, sb.data, n);
        assert_int_not_equal(gw_progress_from_json(copy, n, &back, &err), GW_OK);
        free(copy);
    }
    gw__strbuf_release(&sb);
}

static void json_list_of_the_daemon(void **state)
{
    (void)state;
    gw_progress a = rec("a", "0", 1, 4), b = rec("b", "GPU-x", 2, 0);
    gw_progress_stamp(&a, NULL, T0);
    gw_progress_stamp(&b, NULL, T0 + S);
    gw_strbuf sb;
    gw__strbuf_init(&sb, 0);
    gw__strbuf_puts(&sb, "{\"progress\":[");
    gw_progress_to_json(&a, true, &sb);
    gw__strbuf_putc(&sb, ',');
    gw_progress_to_json(&b, true, &sb);
    gw__strbuf_puts(&sb, "]}");
    gw_progress *v;
    size_t n;
    gw_error err;
    assert_int_equal(gw_progress_list_from_json(sb.data, sb.len, &v, &n, &err), GW_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(&v[0], &a, sizeof a);
    assert_memory_equal(&v[1], &b, sizeof b);
    free(v);
    gw__strbuf_release(&sb);
    const char *bad = "{\"progress\":[{\"job\":\"a\",\"gpu\":\"0\",\"done\":1},{\"job\":\"\"}]}";
    assert_int_equal(gw_progress_list_from_json(bad, strlen(bad), &v, &n, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "record 1"));
    assert_null(v);
    assert_int_equal(gw_progress_list_from_json("{}", 2, &v, &n, &err), GW_EPARSE);
    assert_int_equal(gw_progress_list_from_json("{\"progress\":[]}", 15, &v, &n, &err), GW_OK);
    assert_int_equal(n, 0);
}

static void json_errors_name_the_problem(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int code;
        const char *needle;
    } cases[] = {
        {"{\"job\":\"j\",\"gpu\":\"0\"", GW_EPARSE, "not JSON"},
        {"[1]", GW_EINVAL, "must be a JSON object"},
        {"{\"gpu\":\"0\",\"done\":1}", GW_EINVAL, "missing \"job\""},
        {"{\"job\":\"j\",\"done\":1}", GW_EINVAL, "missing \"gpu\""},
        {"{\"job\":\"j\",\"gpu\":\"0\"}", GW_EINVAL, "missing \"done\""},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":-1}", GW_EINVAL, "\"done\": must be a whole"},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":1.5}", GW_EINVAL, "\"done\": must be a whole"},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":\"1\"}", GW_EINVAL, "\"done\": must be"},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":5,\"total\":4}", GW_EINVAL, "more than total"},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":1,\"totl\":4}", GW_EINVAL, "unknown member \"totl\""},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":1,\"done\":2}", GW_EPARSE, "duplicate"},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":1,\"message\":\"a\\nb\"}", GW_EINVAL, "message"},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":1,\"message\":\"a\\u0000b\"}", GW_EPARSE, ""},
        {"{\"job\":\"../x\",\"gpu\":\"0\",\"done\":1}", GW_EINVAL, "job '../x'"},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":1,\"updated\":1e300}", GW_EINVAL, "\"updated\""},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":1,\"pid\":4294967296}", GW_EINVAL, "\"pid\""},
        {"{\"job\":\"j\",\"gpu\":\"0\",\"done\":1,\"started\":5,\"updated\":4}", GW_EINVAL,
         "started <= updated"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gw_progress p;
        gw_error err;
        gw_error_clear(&err);
        int rc = gw_progress_from_json(cases[i].text, strlen(cases[i].text), &p, &err);
        if (rc != cases[i].code || !strstr(err.message, cases[i].needle))
            fail_msg("case %zu %s: rc %d, message '%s'", i, cases[i].text, rc, err.message);
    }
    char big[GW_PROGRESS_MAX_JSON + 2];
    memset(big, ' ', sizeof big);
    gw_progress p;
    gw_error err;
    assert_int_equal(gw_progress_from_json(big, sizeof big, &p, &err), GW_ERANGE);
}

static void table_keeps_start_expires_and_refuses_when_full(void **state)
{
    (void)state;
    gw_progress_table t = {.max = 3};
    gw_error err;
    gw_progress out;
    int64_t ttl = 600 * S;
    gw_progress a = rec("a", "0", 0, 100);
    assert_int_equal(gw_progress_table_put(&t, &a, T0, ttl, &out, &err), GW_OK);
    a.done = 50;
    assert_int_equal(gw_progress_table_put(&t, &a, T0 + 10 * S, ttl, &out, &err), GW_OK);
    assert_int_equal(out.started_ns, T0);
    assert_true(gw_progress_rate(&out) == 5.0);
    assert_int_equal(t.n, 1);
    gw_progress b = rec("b", "0", 1, 2), c = rec("c", "0", 1, 2), d = rec("d", "0", 1, 2);
    assert_int_equal(gw_progress_table_put(&t, &b, T0 + 100 * S, ttl, NULL, &err), GW_OK);
    assert_int_equal(gw_progress_table_put(&t, &c, T0 + 100 * S, ttl, NULL, &err), GW_OK);
    /* full and nothing expired: refused, naming the limit */
    assert_int_equal(gw_progress_table_put(&t, &d, T0 + 200 * S, ttl, NULL, &err), GW_ERANGE);
    assert_non_null(strstr(err.message, "3 jobs x GPUs"));
    assert_int_equal(t.n, 3);
    /* a's last report is now older than the TTL: it makes room for d */
    assert_int_equal(gw_progress_table_put(&t, &d, T0 + 611 * S, ttl, NULL, &err), GW_OK);
    gw_progress *v;
    size_t n;
    assert_int_equal(gw_progress_table_list(&t, T0 + 611 * S, ttl, &v, &n, &err), GW_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].job, "b");
    assert_string_equal(v[2].job, "d");
    free(v);
    /* listing hides expired records */
    assert_int_equal(gw_progress_table_list(&t, T0 + 701 * S, ttl, &v, &n, &err), GW_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].job, "d");
    free(v);
    assert_int_equal(gw_progress_table_expire(&t, T0 + 701 * S, ttl), 2);
    /* an invalid record is refused */
    gw_progress bad = d;
    bad.done = 9;
    bad.total = 2;
    assert_int_equal(gw_progress_table_put(&t, &bad, T0, ttl, NULL, &err), GW_EINVAL);
    gw_progress_table_release(&t);
}

/* ---------------------------------------------------------------- store */

static char tmpdir[256];

static int make_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gw-progress-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_tmp(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", tmpdir, tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void dir_default_paths(void **state)
{
    (void)state;
    char dir[256], root[256];
    gw_error err;
    assert_int_equal(gw_progress_dir_default("/x/y", "/run/user/5", 5, dir, root, sizeof dir, &err),
                     GW_OK);
    assert_string_equal(dir, "/x/y");
    assert_string_equal(root, "/x/y");
    assert_int_equal(gw_progress_dir_default("", "/run/user/5", 5, dir, root, sizeof dir, &err),
                     GW_OK);
    assert_string_equal(dir, "/run/user/5/gpuwatch/progress");
    assert_string_equal(root, "/run/user/5/gpuwatch");
    assert_int_equal(gw_progress_dir_default(NULL, NULL, 5, dir, root, sizeof dir, &err), GW_OK);
    assert_string_equal(dir, "/tmp/gpuwatch-5/progress");
    assert_string_equal(root, "/tmp/gpuwatch-5");
}

static void dir_prepare_creates_0700_and_refuses_foreign(void **state)
{
    (void)state;
    char root[300], dir[320];
    gw_error err;
    snprintf(root, sizeof root, "%s/gpuwatch", tmpdir);
    snprintf(dir, sizeof dir, "%s/progress", root);
    assert_int_equal(gw_progress_dir_prepare(dir, root, getuid(), false, &err), GW_ENOENT);
    assert_int_equal(gw_progress_dir_prepare(dir, root, getuid(), true, &err), GW_OK);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(root, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* someone else's folder (here: another uid asked for) is refused */
    assert_int_equal(gw_progress_dir_prepare(dir, root, getuid() + 1, false, &err), GW_EPERM);
    assert_non_null(strstr(err.message, "owned by uid"));
    /* group-writable: refused */
    chmod(dir, 0770);
    assert_int_equal(gw_progress_dir_prepare(dir, root, getuid(), true, &err), GW_EPERM);
    assert_non_null(strstr(err.message, "writable by group or others"));
    chmod(dir, 0700);
    /* a symlink in place of the folder: refused */
    char link[320];
    snprintf(link, sizeof link, "%s/gpuwatch2", tmpdir);
    assert_int_equal(symlink(root, link), 0);
    char dir2[340];
    snprintf(dir2, sizeof dir2, "%s/progress", link);
    assert_int_equal(gw_progress_dir_prepare(dir2, link, getuid(), true, &err), GW_EPERM);
    assert_non_null(strstr(err.message, "not a directory"));
}

/* pid_gone seam: the pid *cls names is gone (0: none). */
static bool fake_gone(int32_t pid, void *cls)
{
    return pid == *(int32_t *)cls;
}

static void dir_write_replace_list_and_stale(void **state)
{
    (void)state;
    int32_t gone_pid = 0;
    gw_progress_dir d = {.path = tmpdir, .ttl_ns = 600 * S, .pid_gone = fake_gone,
                         .pid_cls = &gone_pid};
    gw_error err;
    gw_progress a = rec("job1", "MIG-GPU-aa/1/0", 0, 100), out;
    assert_int_equal(gw_progress_dir_write(&d, &a, T0, &out, &err), GW_OK);
    char path[400];
    snprintf(path, sizeof path, "%s/job1@MIG-GPU-aa+1+0.json", tmpdir);
    assert_int_equal(access(path, R_OK), 0);
    a.done = 40;
    assert_int_equal(gw_progress_dir_write(&d, &a, T0 + 4 * S, &out, &err), GW_OK);
    assert_int_equal(out.started_ns, T0); /* the start survived the replace */
    assert_true(gw_progress_rate(&out) == 10.0);
    assert_int_equal(count_files(tmpdir), 1); /* replaced in place, no temporary left */
    /* a second GPU, a record whose reporter is gone, junk and a temp file */
    gw_progress b = rec("job1", "1", 5, 10);
    assert_int_equal(gw_progress_dir_write(&d, &b, T0 + 5 * S, NULL, &err), GW_OK);
    gw_progress dead = rec("job2", "0", 1, 10);
    dead.pid = 999;
    assert_int_equal(gw_progress_dir_write(&d, &dead, T0 + 5 * S, NULL, &err), GW_OK);
    gone_pid = 999; /* its reporter exits */
    snprintf(path, sizeof path, "%s/junk@0.json", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("{not json", f);
    fclose(f);
    gw_progress *v;
    size_t n;
    assert_int_equal(gw_progress_dir_list(&d, T0 + 6 * S, &v, &n, &err), GW_OK);
    assert_int_equal(n, 2); /* job2 is stale (pid gone), junk skipped */
    assert_string_equal(v[0].gpu, "1");
    assert_string_equal(v[1].gpu, "MIG-GPU-aa/1/0");
    assert_int_equal(v[1].done, 40);
    free(v);
    assert_int_equal(count_files(tmpdir), 4); /* readers remove nothing */
    /* after the TTL: nothing listed; the next write sweeps the stale files */
    assert_int_equal(gw_progress_dir_list(&d, T0 + 700 * S, &v, &n, &err), GW_OK);
    assert_int_equal(n, 0);
    assert_null(v);
    gw_progress c = rec("job3", "0", 1, 2);
    assert_int_equal(gw_progress_dir_write(&d, &c, T0 + 700 * S, &out, &err), GW_OK);
    assert_int_equal(count_files(tmpdir), 2); /* job3 and the unparsable junk */
    /* a record older than the TTL does not lend its start */
    c.done = 2;
    assert_int_equal(gw_progress_dir_write(&d, &c, T0 + 1400 * S, &out, &err), GW_OK);
    assert_int_equal(out.started_ns, T0 + 1400 * S);
    /* a missing folder lists as empty */
    gw_progress_dir none = {.path = "/nonexistent/gpuwatch-progress"};
    assert_int_equal(gw_progress_dir_list(&none, T0, &v, &n, &err), GW_OK);
    assert_int_equal(n, 0);
    assert_int_not_equal(gw_progress_dir_write(&none, &c, T0, NULL, &err), GW_OK);
    assert_non_null(strstr(err.message, "/nonexistent/gpuwatch-progress"));
}

static void dir_real_pid_liveness(void **state)
{
    (void)state;
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    int status;
    waitpid(child, &status, 0);
    gw_progress_dir d = {.path = tmpdir};
    gw_error err;
    gw_progress alive = rec("alive", "0", 1, 2), gone = rec("gone", "0", 1, 2);
    alive.pid = (int32_t)getpid();
    gone.pid = (int32_t)child; /* reaped: kill(pid, 0) answers ESRCH */
    int64_t now = T0;
    assert_int_equal(gw_progress_dir_write(&d, &alive, now, NULL, &err), GW_OK);
    assert_int_equal(gw_progress_dir_write(&d, &gone, now, NULL, &err), GW_OK);
    gw_progress *v;
    size_t n;
    assert_int_equal(gw_progress_dir_list(&d, now, &v, &n, &err), GW_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].job, "alive");
    free(v);
}

static void dir_unwritable_leaves_old_record(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip(); /* root writes anyway */
    gw_progress_dir d = {.path = tmpdir};
    gw_error err;
    gw_progress a = rec("j", "0", 1, 10);
    assert_int_equal(gw_progress_dir_write(&d, &a, T0, NULL, &err), GW_OK);
    chmod(tmpdir, 0500);
    a.done = 5;
    assert_int_equal(gw_progress_dir_write(&d, &a, T0 + S, NULL, &err), GW_EIO);
    assert_non_null(strstr(err.message, "j@0.json"));
    chmod(tmpdir, 0700);
    gw_progress *v;
    size_t n;
    assert_int_equal(gw_progress_dir_list(&d, T0 + S, &v, &n, &err), GW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].done, 1);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validation_names_the_field),
        cmocka_unit_test(rate_and_eta),
        cmocka_unit_test(json_round_trip),
        cmocka_unit_test(json_errors_name_the_problem),
        cmocka_unit_test(json_list_of_the_daemon),
        cmocka_unit_test(table_keeps_start_expires_and_refuses_when_full),
        cmocka_unit_test(dir_default_paths),
        cmocka_unit_test_setup_teardown(dir_prepare_creates_0700_and_refuses_foreign, make_tmp,
                                        rm_tmp),
        cmocka_unit_test_setup_teardown(dir_write_replace_list_and_stale, make_tmp, rm_tmp),
        cmocka_unit_test_setup_teardown(dir_real_pid_liveness, make_tmp, rm_tmp),
        cmocka_unit_test_setup_teardown(dir_unwritable_leaves_old_record, make_tmp, rm_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
