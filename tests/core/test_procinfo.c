/* test_procinfo.c — pid -> name/user/cmdline through a fixture /proc:
 * values, pid reuse detected by start time, caching, gone processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backends/procinfo.h"
#include "fixture_proc.h"

#include <pwd.h>

static const char cmd_python[] = "python3\0train.py\0--epochs\0003";

static void fills_name_user_and_cmdline(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    fixture_process(root, 4242, "python3", 777, 0, cmd_python, sizeof cmd_python);
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, root), GW_OK);
    gw__procinfo_begin_round(pc);
    gw_process p = {.pid = 4242};
    gw__procinfo_fill(pc, &p);
    assert_true(gw_process_has(&p, GW_PROC_NAME));
    assert_string_equal(p.name, "python3");
    assert_true(gw_process_has(&p, GW_PROC_USER));
    /* uid 0's name as this machine's user database has it (no entry: the
     * number) */
    const struct passwd *pw = getpwuid(0);
    assert_string_equal(p.user, pw ? pw->pw_name : "0");
    assert_true(gw_process_has(&p, GW_PROC_CMDLINE));
    assert_string_equal(p.cmdline, "python3 train.py --epochs 3");
    gw__procinfo_close(pc);
    fixture_rmrf(root);
}

static void odd_comm_and_unknown_uid(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    unsigned uid = 4000123; /* one without a user on this machine */
    while (getpwuid(uid))
        uid++;
    fixture_process(root, 7, "a) b (c", 5, uid, "x", 1);
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, root), GW_OK);
    gw_process p = {.pid = 7};
    gw__procinfo_fill(pc, &p);
    assert_string_equal(p.name, "a) b (c");
    char want[16];
    snprintf(want, sizeof want, "%u", uid);
    assert_string_equal(p.user, want); /* no passwd entry: the number */
    gw__procinfo_close(pc);
    fixture_rmrf(root);
}

static void caches_until_pid_is_reused(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    fixture_process(root, 100, "first", 1000, 0, "first", 5);
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, root), GW_OK);
    gw_process p = {.pid = 100};
    gw__procinfo_fill(pc, &p);
    assert_string_equal(p.name, "first");

    /* same start time, new comm: the cache answers (no re-read) */
    char rel[32];
    snprintf(rel, sizeof rel, "100/comm");
    fixture_write(root, rel, "renamed\n");
    gw_process q = {.pid = 100};
    gw__procinfo_fill(pc, &q);
    assert_string_equal(q.name, "first");

    /* new start time = a new process with the recycled pid: re-read */
    fixture_process(root, 100, "second", 2000, 0, "second", 6);
    gw_process r = {.pid = 100};
    gw__procinfo_fill(pc, &r);
    assert_string_equal(r.name, "second");
    assert_string_equal(r.cmdline, "second");

    /* gone: nothing filled */
    fixture_rmrf(root);
    gw_process s = {.pid = 100};
    gw__procinfo_fill(pc, &s);
    assert_false(gw_process_has(&s, GW_PROC_NAME));
    gw__procinfo_close(pc);
}

static void many_pids_grow_and_evict(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    for (unsigned pid = 1; pid <= 300; pid++)
        fixture_process(root, pid, "worker", pid, 0, "w", 1);
    gw__procinfo *pc;
    assert_int_equal(gw__procinfo_open(&pc, root), GW_OK);
    for (int round = 0; round < 4; round++) {
        gw__procinfo_begin_round(pc);
        /* only the first 10 pids stay in use after round 0 */
        unsigned last = round == 0 ? 300 : 10;
        for (unsigned pid = 1; pid <= last; pid++) {
            gw_process p = {.pid = pid};
            gw__procinfo_fill(pc, &p);
            assert_string_equal(p.name, "worker");
        }
    }
    gw__procinfo_close(pc);
    fixture_rmrf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fills_name_user_and_cmdline),
        cmocka_unit_test(odd_comm_and_unknown_uid),
        cmocka_unit_test(caches_until_pid_is_reused),
        cmocka_unit_test(many_pids_grow_and_evict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
