/* test_cgroup.c — who owns a process, from /proc/PID/cgroup text: every
 * layout of cgroup.h (Docker with either driver, Podman, Kubernetes with
 * the systemd and cgroupfs drivers and each runtime, Slurm v1 and v2,
 * systemd services and sessions), hostile and malformed text, and the pod
 * name from a kubelet log folder fixture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backends/cgroup.h"
#include "fixture_proc.h"

#include <string.h>

#define CID "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6"
#define UID "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
#define UID_ "1b2c3d4e_5f60_4a7b_8c9d_0e1f2a3b4c5d"

static gw_owner parse(const char *text)
{
    gw_owner o;
    gw__cgroup_owner_parse(text, strlen(text), &o);
    return o;
}

static void containers(void **state)
{
    (void)state;
    gw_owner o = parse("0::/system.slice/docker-" CID ".scope\n");
    assert_int_equal(o.kind, GW_OWNER_CONTAINER);
    assert_string_equal(o.runtime, "docker");
    assert_string_equal(o.container_id, CID);
    assert_string_equal(o.unit, "");
    /* cgroupfs driver, cgroup v1: the memory controller's line */
    o = parse("12:pids:/\n11:memory:/docker/" CID "\n1:name=systemd:/system.slice/x.service\n");
    assert_int_equal(o.kind, GW_OWNER_CONTAINER);
    assert_string_equal(o.runtime, "docker");
    assert_string_equal(o.container_id, CID);
    o = parse("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" CID ".scope\n");
    assert_int_equal(o.kind, GW_OWNER_CONTAINER);
    assert_string_equal(o.runtime, "podman");
}

static void kubernetes(void **state)
{
    (void)state;
    gw_owner o = parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
                       ".slice/cri-containerd-" CID ".scope\n");
    assert_int_equal(o.kind, GW_OWNER_KUBERNETES);
    assert_string_equal(o.pod_uid, UID);
    assert_string_equal(o.runtime, "containerd");
    assert_string_equal(o.container_id, CID);
    /* guaranteed pods have no QoS level; CRI-O's conmon is not the unit */
    o = parse("0::/kubepods.slice/kubepods-pod" UID_ ".slice/crio-" CID ".scope\n");
    assert_int_equal(o.kind, GW_OWNER_KUBERNETES);
    assert_string_equal(o.pod_uid, UID);
    assert_string_equal(o.runtime, "crio");
    o = parse("0::/kubepods.slice/kubepods-pod" UID_ ".slice/crio-conmon-" CID ".scope\n");
    assert_int_equal(o.kind, GW_OWNER_KUBERNETES);
    assert_string_equal(o.unit, "");
    /* cgroupfs driver (v1): the container id has no runtime prefix */
    o = parse("10:memory:/kubepods/besteffort/pod" UID "/" CID "\n");
    assert_int_equal(o.kind, GW_OWNER_KUBERNETES);
    assert_string_equal(o.pod_uid, UID);
    assert_string_equal(o.container_id, CID);
    assert_string_equal(o.runtime, "");
}

static void slurm_and_systemd(void **state)
{
    (void)state;
    gw_owner o = parse("0::/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0\n");
    assert_int_equal(o.kind, GW_OWNER_SLURM);
    assert_string_equal(o.slurm_job, "4242");
    assert_string_equal(o.slurm_step, "0");
    assert_string_equal(o.unit, ""); /* slurmstepd.scope is the daemon's, not the job's */
    o = parse("7:memory:/slurm/uid_1000/job_77/step_batch/task_0\n");
    assert_int_equal(o.kind, GW_OWNER_SLURM);
    assert_string_equal(o.slurm_job, "77");
    assert_string_equal(o.slurm_step, "batch");
    o = parse("0::/system.slice/ollama.service\n");
    assert_int_equal(o.kind, GW_OWNER_SYSTEMD);
    assert_string_equal(o.unit, "ollama.service");
    o = parse("0::/user.slice/user-1000.slice/session-3.scope\n");
    assert_int_equal(o.kind, GW_OWNER_SYSTEMD);
    assert_string_equal(o.unit, "session-3.scope");
}

/* Nothing known, text that is not a cgroup file, and names a container
 * could give itself: no owner, no field with a byte outside the set. */
static void none_and_hostile(void **state)
{
    (void)state;
    gw_owner o = parse("0::/\n");
    assert_int_equal(o.kind, GW_OWNER_NONE);
    o = parse("garbage without colons");
    assert_int_equal(o.kind, GW_OWNER_NONE);
    o = parse("0::/system.slice/docker-zz$(reboot).scope\n");
    assert_int_equal(o.kind, GW_OWNER_NONE); /* not hex, and '$' may not be a unit */
    o = parse("0::/system.slice/evil\x1b[2J.service\n");
    assert_int_equal(o.kind, GW_OWNER_NONE);
    o = parse("0::/kubepods.slice/kubepods-podZZZZ.slice/x\n"); /* not a UID */
    assert_string_equal(o.pod_uid, "");
    char nul[] = "0::/system.slice/a\0b.service\n";
    gw__cgroup_owner_parse(nul, sizeof nul - 1, &o);
    assert_int_equal(o.kind, GW_OWNER_NONE);
    /* a long path is cut, never overflows */
    char longp[2048] = "0::/";
    for (int i = 0; i < 200; i++)
        strcat(longp, "abcdefghi/");
    o = parse(longp);
    assert_int_equal(o.kind, GW_OWNER_NONE);
}

/* The kubelet's /var/log/pods/NAMESPACE_NAME_UID names the pod. */
static void pod_name_from_log_folder(void **state)
{
    (void)state;
    char root[64];
    assert_non_null(fixture_tmpdir(root, sizeof root));
    fixture_write(root, "ml-team_trainer-0_" UID "/trainer/0.log", "x");
    fixture_write(root, "other_web-1_aaaaaaaa-5f60-4a7b-8c9d-0e1f2a3b4c5d/web/0.log", "x");
    gw_owner o = parse("0::/kubepods.slice/kubepods-pod" UID_ ".slice/crio-" CID ".scope\n");
    assert_true(gw__cgroup_pod_name(root, &o));
    assert_string_equal(o.pod, "trainer-0");
    assert_string_equal(o.pod_namespace, "ml-team");
    gw_owner none = parse("0::/kubepods.slice/kubepods-pod0000.slice/x\n");
    assert_false(gw__cgroup_pod_name(root, &none));
    gw_owner again = parse("0::/kubepods.slice/kubepods-pod" UID_ ".slice/crio-" CID ".scope\n");
    assert_false(gw__cgroup_pod_name("/nonexistent/pods", &again));
    assert_string_equal(again.pod, "");
    fixture_rmrf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(containers),
        cmocka_unit_test(kubernetes),
        cmocka_unit_test(slurm_and_systemd),
        cmocka_unit_test(none_and_hostile),
        cmocka_unit_test(pod_name_from_log_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
