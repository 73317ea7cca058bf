/* cgroup.h — who owns a process on a shared host, from its cgroup path
 * (/proc/PID/cgroup): a container (Docker, containerd, CRI-O, Podman), a
 * Kubernetes pod, a Slurm job, or a systemd unit.
 *
 * Owns: parsing the cgroup file's text and the path into a gw_owner (pure
 * functions, no I/O), and the pod name lookup in the kubelet's log folder
 * (/var/log/pods/NAMESPACE_NAME_UID, a read-only source every node has).
 *
 * Layouts recognised (facts: ../shared/reference/serving-fleet-and-ui.md):
 *   Docker, systemd driver     /system.slice/docker-<id>.scope
 *   Docker, cgroupfs driver    /docker/<id>
 *   Podman                     .../libpod-<id>.scope
 *   Kubernetes, systemd driver /kubepods.slice/kubepods-<qos>.slice/
 *                              kubepods-<qos>-pod<uid, '_' for '-'>.slice/
 *                              cri-containerd-<id>.scope | crio-<id>.scope |
 *                              docker-<id>.scope (guaranteed pods: no qos)
 *   Kubernetes, cgroupfs       /kubepods/<qos>/pod<uid>/<id>
 *   Slurm, cgroup v2           /system.slice/slurmstepd.scope/job_<id>/step_<s>/...
 *   Slurm, cgroup v1           /slurm/uid_<uid>/job_<id>/step_<s>
 *   systemd                    /system.slice/NAME.service,
 *                              /user.slice/user-<uid>.slice/session-N.scope
 * cgroup v2 has one line "0::PATH"; with v1 the memory controller's line is
 * read (else the first one with a path).
 *
 * Invariants:
 *  1. The text is untrusted (a container can name its own cgroups): every
 *     field is bounded and holds only [A-Za-z0-9_.@:-] (anything else
 *     leaves the field empty); ids are 1..64 hex digits.
 *  2. kind follows the most specific owner found: Slurm job, then
 *     Kubernetes pod, then container, then systemd unit; NONE when none.
 */
#ifndef GW_BACKENDS_CGROUP_H
#define GW_BACKENDS_CGROUP_H

#include "core/model.h"

#include <stdbool.h>
#include <stddef.h>

/* Fills *o from the text of /proc/PID/cgroup (len bytes; need not be
 * NUL-terminated). Returns whether an owner was found (o->kind != NONE);
 * o is cleared first. */
bool gw__cgroup_owner_parse(const char *text, size_t len, gw_owner *o);

/* Fills o->pod and o->pod_namespace from the kubelet's log folder
 * (pods_dir, "/var/log/pods" on a node): the entry NAMESPACE_NAME_UID whose
 * UID is o->pod_uid. Returns whether one was found; leaves o alone
 * otherwise (no folder, no such pod, a name over its field). */
bool gw__cgroup_pod_name(const char *pods_dir, gw_owner *o);

#endif
