/* fuzz_cgroup.c — libFuzzer target for the cgroup owner parser
 * (src/backends/cgroup.c): any /proc/PID/cgroup text (a container may name
 * its own cgroups) must parse without reading past its end; every field
 * ends within its size and holds only [A-Za-z0-9_.@:-] (cgroup.h invariant
 * 1); the kind agrees with the fields found (invariant 2). Built by
 * scripts/fuzz-cgroup.sh; its corpus (tests/core/corpus/fuzz_cgroup)
 * replays as a normal test. */
#include "backends/cgroup.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void field_ok(const char *f, size_t cap)
{
    size_t n = strnlen(f, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        char c = f[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '@' || c == ':' || c == '-'))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_owner o;
    bool found = gw__cgroup_owner_parse((const char *)data, size, &o);
    field_ok(o.runtime, sizeof o.runtime);
    field_ok(o.container_id, sizeof o.container_id);
    field_ok(o.pod_uid, sizeof o.pod_uid);
    field_ok(o.unit, sizeof o.unit);
    field_ok(o.slurm_job, sizeof o.slurm_job);
    field_ok(o.slurm_step, sizeof o.slurm_step);
    field_ok(o.pod, sizeof o.pod);
    field_ok(o.pod_namespace, sizeof o.pod_namespace);
    gw_owner_kind want = o.slurm_job[0]      ? GW_OWNER_SLURM
                         : o.pod_uid[0]      ? GW_OWNER_KUBERNETES
                         : o.container_id[0] ? GW_OWNER_CONTAINER
                         : o.unit[0]         ? GW_OWNER_SYSTEMD
                                             : GW_OWNER_NONE;
    if (o.kind != want || found != (o.kind != GW_OWNER_NONE))
        abort();
    return 0;
}
