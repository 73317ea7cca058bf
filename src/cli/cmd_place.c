/* cmd_place.c — `gpuwatch place`: prints where a memory need would go on
 * this host's GPUs (or on --gpu given ones), counting the reservations in
 * the ledger, without reserving anything. Human text or --json (schema
 * gpuwatch.plan/1, docs/placement.md). Exit 0 when it fits, 1 when it does
 * not (the reason is printed), 2 for a bad command line.
 *
 * When a daemon answers (--daemon URL / GPUWATCH_DAEMON / the default
 * GW_DAEMON_DEFAULT_URL = http://127.0.0.1:19400; --local, --gpu, --ledger
 * skip it) the plan is the daemon's POST /api/v1/plan, which counts the
 * daemon's reservations; nothing listening, or a server there that is not
 * gpuwatch, falls back to this host with one stderr line saying which
 * (remote.h). The plan output names the path ("via daemon URL" / "via local
 * ledger PATH").
 *
 * --cluster plans on every node of the cluster view instead (its peers or
 * a Prometheus server; cli/cluster_opts.h) and names the node it chose
 * (fleet/cluster_place.h); nothing is reserved there either.
 */
#include "cli/cli.h"
#include "cli/cluster_opts.h"
#include "fleet/cluster_place.h"
#include "cli/host_cpu.h"
#include "place/remote.h"
#include "place/request.h"
#include "render/json_writer.h"

#include <stdio.h>
#include <string.h>

static void place_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch place (--mem SIZE | --model FILE.gguf [--ctx N] | --layers N\n"
            "                       --layer-size SIZE) [OPTIONS]\n"
            "\n"
            "Prints a placement plan: the GPUs, layers per GPU, -ngl, tensor split,\n"
            "expected use per GPU and what stays on the host, or why nothing fits.\n"
            "Reservations in the ledger count as used; nothing is reserved.\n"
            "\n"
            "%s"
            "Output:\n"
            "  --json, --pretty      machine-readable plan (schema gpuwatch.plan/1)\n"
            "Daemon:\n"
            "  --daemon URL          plan on the daemon at URL (http://HOST:PORT on this\n"
            "                        host; default $GPUWATCH_DAEMON, else\n"
            "                        " GW_DAEMON_DEFAULT_URL "); nothing listening: locally\n"
            "  --token TOKEN         the daemon's bearer token (default $GPUWATCH_TOKEN)\n"
            "  --local               plan locally, not on the daemon\n"
            "Sources (when no --gpu is given):\n"
            "%s"
            "  -h, --help            this text\n"
            "%s"
            "\n"
            "Exit status: 0 it fits, 1 it does not fit (or an error), 2 usage.\n",
            gw_place_request_help, gw_cli_source_options_help, gw_cli_cluster_options_help);
}

typedef struct daemon_opts {
    const char *url, *token;
    bool local;
    gw_cli_cluster cluster; /* --cluster and its options */
    bool cluster_opt;       /* one of them other than --cluster */
} daemon_opts;

enum { O_DAEMON = 1, O_TOKEN, O_LOCAL };

static const gw_opt place_opts[] = {
    {"--daemon", NULL, "URL", O_DAEMON},
    {"--token", NULL, "TOKEN", O_TOKEN},
    {"--local", NULL, NULL, O_LOCAL},
    {NULL, NULL, NULL, 0},
};

/* Parses the options; returns 0, or GW_CLI_EXIT_OK / GW_CLI_EXIT_USAGE
 * (printed). */
static int parse_options(int argc, char **argv, gw_place_request *r, daemon_opts *dopt)
{
    const gw_opt *const tables[] = {place_opts, gw_place_request_opts, gw_cli_source_opts,
                                    gw_cli_cluster_opts, NULL};
    gw_cli_parse p;
    gw_cli_parse_init(&p, "place", argc, argv, tables, place_usage);
    for (int id; (id = gw_cli_next(&p)) != GW_CLI_DONE;) {
        if (id == GW_CLI_EXIT_OK || id == GW_CLI_EXIT_USAGE)
            return id;
        if (id == GW_CLI_ARG) {
            fprintf(stderr, "gpuwatch place: unexpected argument '%s' (see 'gpuwatch place "
                            "--help')\n", p.scan.value);
            return GW_CLI_EXIT_USAGE;
        }
        if (id == O_DAEMON || id == O_TOKEN || id == O_LOCAL) {
            if (id == O_DAEMON)
                dopt->url = p.scan.value;
            else if (id == O_TOKEN)
                dopt->token = p.scan.value;
            else
                dopt->local = true;
            continue;
        }
        int s = gw_cli_source_apply(&p, id, &r->cfg);
        if (s == 0) {
            s = gw_cli_cluster_apply(&p, id, &dopt->cluster);
            dopt->cluster_opt |= s > 0 && id != GW_CLI_ID_CLUSTER;
        }
        if (s < 0)
            return s;
        if (s > 0)
            continue;
        gw_error err;
        gw_error_clear(&err);
        if (gw_place_request_apply(r, id, p.scan.value, &err) < 0) {
            fprintf(stderr, "gpuwatch place: %s\n", err.message);
            return GW_CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/* Checks the options that go (or do not go) with --cluster. 0 or the exit
 * code after printing. */
static int check_cluster_options(gw_place_request *r, daemon_opts *dopt)
{
    if (dopt->cluster_opt && !dopt->cluster.on) {
        fprintf(stderr, "gpuwatch place: the peer and Prometheus options go with --cluster\n");
        return GW_EXIT_USAGE;
    }
    if (!dopt->cluster.on)
        return 0;
    if (r->n_given || r->devices_arg || dopt->url || dopt->local || r->ledger_path ||
        r->no_ledger) {
        fprintf(stderr, "gpuwatch place: --cluster plans on the nodes' own GPUs and "
                        "reservations: it takes no --gpu, --devices, --daemon, --local, "
                        "--ledger or --no-ledger\n");
        return GW_EXIT_USAGE;
    }
    return gw_cli_cluster_finish(&dopt->cluster, "place");
}

typedef struct cluster_plan_view {
    const gw__cluster *cl;
    const gw__cluster_plan *cp;
} cluster_plan_view;

static void write_plan(gw_json *j, const void *arg)
{
    const cluster_plan_view *v = arg;
    gw__cluster_plan_json(j, v->cl, v->cp);
}

/* --cluster: the need on every node; the chosen node and its plan. */
static int place_cluster(gw_place_request *r, const daemon_opts *dopt)
{
    gw_error err;
    gw_error_clear(&err);
    if (gw_place_request_prepare_need(r, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch place: %s\n", err.message);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    gw__cluster cl;
    int rc = gw_cli_cluster_poll(&dopt->cluster, "place", &cl);
    gw__cluster_plan cp;
    if (rc == 0 && gw__cluster_place(&cl, &r->need, &r->opts, &cp, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch place: %s\n", err.message);
        rc = err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    } else if (rc == 0) {
        rc = cp.chosen >= 0 ? GW_EXIT_OK : GW_EXIT_ERROR;
        if (r->json) {
            const cluster_plan_view v = {&cl, &cp};
            if (!gw_cli_cluster_print_json(r->pretty, write_plan, &v))
                rc = GW_EXIT_ERROR;
        } else {
            gw__cluster_plan_print(stdout, &cl, &cp, r->model_note);
        }
        gw__cluster_plan_release(&cp);
    }
    gw__cluster_release(&cl);
    gw_place_request_release(r);
    if (fflush(stdout) != 0)
        rc = GW_EXIT_ERROR;
    return rc;
}

int gw_cmd_place(int argc, char **argv)
{
    gw_place_request r;
    gw_place_request_init(&r);
    daemon_opts dopt = {0};
    gw_cli_cluster_init(&dopt.cluster);
    int s = parse_options(argc, argv, &r, &dopt);
    if (s)
        return s == GW_CLI_EXIT_OK ? GW_EXIT_OK : GW_EXIT_USAGE;
    s = check_cluster_options(&r, &dopt);
    if (s)
        return s;
    if (dopt.cluster.on)
        return place_cluster(&r, &dopt);
    gw_error err;
    gw_error_clear(&err);
    if (gw_place_request_prepare(&r, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch place: %s\n", err.message);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    gw_place_remote d;
    bool use_daemon = false;
    char fallback[600];
    int rc = gw_place_remote_select(dopt.url, dopt.token, dopt.local, &r, &d, &use_daemon,
                                    fallback, sizeof fallback, &err);
    if (rc) {
        fprintf(stderr, "gpuwatch place: %s (--local plans on this host)\n", err.message);
        gw_place_request_release(&r);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    if (fallback[0])
        fprintf(stderr, "gpuwatch place: %s; using the local ledger\n", fallback);
    char via[1100];
    if (use_daemon) {
        snprintf(via, sizeof via, "daemon %s", d.url.text);
    } else {
        const char *lp = gw_place_request_ledger(&r);
        snprintf(via, sizeof via, "local ledger %s", lp ? lp : "(none)");
        rc = gw_place_request_pending(&r, &err);
        if (rc) {
            fprintf(stderr, "gpuwatch place: %s\n", err.message);
            gw_place_request_release(&r);
            return GW_EXIT_ERROR;
        }
    }
    gw_plan plan;
    gw_plan_init(&plan);
    rc = use_daemon ? gw_place_remote_plan(&d, &r, &plan, &err)
                    : gw_place(r.devs, r.n_devs, &r.need, &r.opts, &plan, &err);
    if (rc != GW_OK) {
        fprintf(stderr, "gpuwatch place: %s\n", err.message);
        gw_plan_release(&plan);
        gw_place_request_release(&r);
        return err.code == GW_EINVAL ? GW_EXIT_USAGE : GW_EXIT_ERROR;
    }
    rc = plan.fits ? GW_EXIT_OK : GW_EXIT_ERROR;
    if (r.json) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, 0);
        gw_json j;
        gw__json_init(&j, &sb, r.pretty);
        gw__json_object_begin(&j);
        gw__json_key(&j, "schema");
        gw__json_string(&j, "gpuwatch.plan/1");
        gw__json_key(&j, "via");
        gw__json_string(&j, via);
        gw__json_key(&j, "model");
        gw__json_string(&j, r.model_note[0] ? r.model_note : NULL);
        if (r.model) {
            gw__json_key(&j, "host_cpu");
            gw_cli_host_cpu_json(&j, (gw_est_cpu_variant)r.host_cpu, r.host_bufts);
        }
        gw__json_key(&j, "plan");
        gw_place_plan_json(&j, &plan, r.devs);
        gw__json_object_end(&j);
        if (sb.failed) {
            fprintf(stderr, "gpuwatch place: out of memory\n");
            rc = GW_EXIT_ERROR;
        } else {
            fwrite(sb.data, 1, sb.len, stdout);
            fputc('\n', stdout);
        }
        gw__strbuf_release(&sb);
    } else {
        gw_place_print_plan(stdout, &plan, r.devs, r.model_note);
        printf("  via %s\n", via);
    }
    gw_plan_release(&plan);
    gw_place_request_release(&r);
    if (fflush(stdout) != 0)
        rc = GW_EXIT_ERROR;
    return rc;
}
