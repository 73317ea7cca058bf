/* test_subprocess.c — the child-process runner: output capture, exit
 * status, signals, the deadline (whole process group killed, child reaped),
 * the output cap, descriptors not leaking into the child, PATH lookup. */
#include "backends/subprocess.h"
#include "smi_test_util.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static char sh_path[512];

static int setup(void **state)
{
    (void)state;
    return gw__subprocess_find("sh", sh_path, sizeof sh_path) == GW_OK ? 0 : -1;
}

/* A deadline for scripts that end by themselves: never reached, so no test
 * depends on how fast this machine runs them. */
#define NO_DEADLINE_MS 120000u

/* Runs sh -c script. */
static int run_sh(const char *script, unsigned timeout_ms, size_t cap, gw__reaper *r,
                  gw__subprocess_result *res, gw_error *err)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    return gw__subprocess_run(sh_path, argv, timeout_ms, cap, cap, r, res, err);
}

static void test_capture_and_exit_code(void **state)
{
    (void)state;
    gw__subprocess_result res;
    gw_error err;
    gw_error_clear(&err);
    assert_int_equal(run_sh("printf 'hello\\nworld'; printf oops >&2; exit 3", NO_DEADLINE_MS,
                            4096, NULL, &res, &err),
                     GW_OK);
    assert_true(res.exited);
    assert_int_equal(res.exit_code, 3);
    assert_false(res.timed_out);
    assert_false(res.signaled);
    assert_string_equal(res.out, "hello\nworld");
    assert_int_equal(res.out_len, 11);
    assert_string_equal(res.err, "oops");
    gw__subprocess_result_release(&res);
    assert_true(smi_no_children());
}

static void test_empty_output_is_empty_string(void **state)
{
    (void)state;
    gw__subprocess_result res;
    gw_error err;
    assert_int_equal(run_sh("exit 0", NO_DEADLINE_MS, 16, NULL, &res, &err), GW_OK);
    assert_true(res.exited);
    assert_int_equal(res.exit_code, 0);
    assert_non_null(res.out);
    assert_string_equal(res.out, "");
    assert_string_equal(res.err, "");
    gw__subprocess_result_release(&res);
}

static void test_killed_by_signal(void **state)
{
    (void)state;
    gw__subprocess_result res;
    gw_error err;
    assert_int_equal(run_sh("kill -TERM $$; sleep 600", NO_DEADLINE_MS, 16, NULL, &res, &err),
                     GW_OK);
    assert_false(res.exited);
    assert_true(res.signaled);
    assert_int_equal(res.term_signal, SIGTERM);
    assert_false(res.timed_out);
    gw__subprocess_result_release(&res);
    assert_true(smi_no_children());
}

static void test_deadline_kills_the_group_and_reaps(void **state)
{
    (void)state;
    char pidfile[] = "/tmp/gw-smi-test-XXXXXX";
    int fd = mkstemp(pidfile);
    assert_true(fd >= 0);
    close(fd);
    char script[256];
    snprintf(script, sizeof script, "sleep 600 & echo $$ $! > %s; echo started; wait", pidfile);
    gw__subprocess_result res;
    gw_error err;
    gw__reaper r;
    gw__reaper_init(&r);
    /* The script never ends; the deadline must kill it. What it printed
     * before is checked too, so it must have got that far: on a machine too
     * busy for that within the deadline, try again with a longer one. */
    unsigned deadline_ms = 300;
    for (;;) {
        assert_int_equal(run_sh(script, deadline_ms, 4096, &r, &res, &err), GW_OK);
        assert_true(res.timed_out);
        if (strcmp(res.out, "started\n") == 0 || deadline_ms >= NO_DEADLINE_MS)
            break;
        gw__subprocess_result_release(&res);
        deadline_ms *= 2;
    }
    assert_false(res.exited);
    assert_true(res.signaled);
    assert_int_equal(res.term_signal, SIGKILL);
    assert_false(res.unreaped);
    assert_string_equal(res.out, "started\n"); /* what it printed before is kept */
    gw__subprocess_result_release(&res);
    long a = 0, b = 0;
    assert_true(smi_read_pids(pidfile, &a, &b));
    unlink(pidfile);
    assert_true(smi_pid_dead(a));
    assert_true(smi_pid_dead(b)); /* the grandchild too: the whole group */
    assert_true(smi_no_children());
    assert_int_equal(r.n, 0);
    gw__reaper_release(&r, 100);
}

static void test_exit_kills_what_it_left_behind(void **state)
{
    (void)state;
    /* the background sleep keeps stdout open: without the group kill the
     * call would wait for it */
    gw__subprocess_result res;
    gw_error err;
    assert_int_equal(run_sh("sleep 600 & echo $!; exit 7", NO_DEADLINE_MS, 4096, NULL, &res, &err),
                     GW_OK);
    assert_true(res.exited);
    assert_int_equal(res.exit_code, 7);
    assert_false(res.timed_out);
    long bg = strtol(res.out, NULL, 10);
    assert_true(bg > 0);
    assert_true(smi_pid_dead(bg));
    gw__subprocess_result_release(&res);
    assert_true(smi_no_children());
}

static void test_output_cap_kills(void **state)
{
    (void)state;
    gw__subprocess_result res;
    gw_error err;
    assert_int_equal(run_sh("while :; do echo yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy; done",
                            NO_DEADLINE_MS, 1000, NULL, &res, &err),
                     GW_OK);
    assert_true(res.overflow);
    assert_false(res.exited);
    assert_false(res.timed_out);
    assert_int_equal(res.out_len, 1000);
    assert_int_equal(strlen(res.out), 1000);
    gw__subprocess_result_release(&res);
    assert_true(smi_no_children());
}

/* Output arriving in many reads grows the capture buffer several times; a
 * child printing exactly the cap is not an overflow, one byte more is. */
static void test_output_exactly_at_cap(void **state)
{
    (void)state;
    const char *script = "i=0; while [ $i -lt 3000 ]; do"
                         " printf '0123456789abcdefghijklmnopqrstu\\n'; i=$((i+1)); done";
    gw__subprocess_result res;
    gw_error err;
    assert_int_equal(run_sh(script, NO_DEADLINE_MS, 96000, NULL, &res, &err), GW_OK);
    assert_true(res.exited);
    assert_int_equal(res.exit_code, 0);
    assert_false(res.overflow);
    assert_int_equal(res.out_len, 96000);
    assert_int_equal(strlen(res.out), 96000);
    assert_memory_equal(res.out + 95968, "0123456789abcdefghijklmnopqrstu\n", 32);
    gw__subprocess_result_release(&res);
    assert_int_equal(run_sh(script, NO_DEADLINE_MS, 95999, NULL, &res, &err), GW_OK);
    assert_true(res.overflow);
    assert_false(res.exited);
    assert_int_equal(res.out_len, 95999);
    gw__subprocess_result_release(&res);
    assert_true(smi_no_children());
}

static void test_descriptors_do_not_leak(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
    assert_true(fd > 2);
    char script[128];
    snprintf(script, sizeof script,
             "if [ -e /proc/self/fd/%d ]; then echo leaked; else echo closed; fi; cat", fd);
    gw__subprocess_result res;
    gw_error err;
    assert_int_equal(run_sh(script, NO_DEADLINE_MS, 4096, NULL, &res, &err), GW_OK);
    close(fd);
    assert_true(res.exited);
    /* and stdin is /dev/null: cat ends at once with nothing */
    assert_string_equal(res.out, "closed\n");
    gw__subprocess_result_release(&res);
}

static void test_not_found(void **state)
{
    (void)state;
    gw__subprocess_result res;
    gw_error err;
    gw_error_clear(&err);
    const char *argv[] = {"nope", NULL};
    assert_int_equal(gw__subprocess_run("/nonexistent/gw-nope", argv, 1000, 16, 16, NULL, &res,
                                        &err),
                     GW_ENOENT);
    assert_non_null(strstr(err.message, "/nonexistent/gw-nope"));
    assert_null(res.out);
    gw__subprocess_result_release(&res);
    assert_true(smi_no_children());
}

static void test_find_on_path(void **state)
{
    (void)state;
    char out[512];
    const char *old = getenv("PATH");
    char *saved = strdup(old ? old : "");
    smi_use_fixture("nv-normal");
    assert_int_equal(gw__subprocess_find("nvidia-smi", out, sizeof out), GW_OK);
    assert_non_null(strstr(out, "tests/smi/fixtures/nv-normal/nvidia-smi"));
    assert_int_equal(gw__subprocess_find("gw-no-such-tool-here", out, sizeof out), GW_ENOENT);
    assert_string_equal(out, "");
    setenv("PATH", saved, 1);
    free(saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_and_exit_code),
        cmocka_unit_test(test_empty_output_is_empty_string),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_deadline_kills_the_group_and_reaps),
        cmocka_unit_test(test_exit_kills_what_it_left_behind),
        cmocka_unit_test(test_output_cap_kills),
        cmocka_unit_test(test_output_exactly_at_cap),
        cmocka_unit_test(test_descriptors_do_not_leak),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_find_on_path),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
