/* cluster_render.c — the cluster view as JSON (schema gpuwatch.cluster/1,
 * docs/cluster.md) and as the Distributed Nodes Report for people. Both
 * read only the gw__cluster; a node that is down shows its reason and the
 * age of its last good data, never figures presented as current. */
#include "fleet/cluster.h"
#include "core/util.h"
#include "place/plan.h"

#include <string.h>

static const char *or_null(const char *s) { return s && *s ? s : NULL; }

/* Seconds since the node's last good data; false when it never had any. */
static bool data_age(const gw__node *n, int64_t now_ns, double *age)
{
    if (!n->fetched_ns)
        return false;
    *age = now_ns > n->fetched_ns ? (double)(now_ns - n->fetched_ns) / 1e9 : 0;
    return true;
}

static void gpu_json(gw_json *j, const gw__node_gpu *g)
{
    const gw_place_device *d = &g->dev;
    gw__json_object_begin(j);
    gw__json_kv_u64(j, "index", true, d->index);
    gw__json_kv_str(j, "name", or_null(d->name));
    gw__json_kv_str(j, "uuid", or_null(d->uuid));
    gw__json_kv_str(j, "vendor", gw_vendor_name(d->vendor));
    gw__json_kv_str(j, "state", gw_device_state_name(d->state));
    gw__json_kv_u64(j, "memory_total_bytes", d->total > 0, d->total);
    gw__json_kv_u64(j, "memory_used_bytes", g->has_used, g->used);
    gw__json_kv_u64(j, "memory_free_bytes", d->has_free, d->free);
    gw__json_kv_u64(j, "reservations_pending_bytes", true, d->pending);
    gw__json_kv_double(j, "utilization_percent", g->has_util, g->util_percent);
    gw__json_kv_double(j, "temperature_celsius", d->has_temp, d->temp_mc / 1000.0);
    gw__json_object_end(j);
}

static void model_json(gw_json *j, const gw__node_model *nm)
{
    gw__json_object_begin(j);
    gw__json_kv_str(j, "server", or_null(nm->server));
    gw__json_kv_str(j, "kind", gw__server_kind_name(nm->kind));
    gw__loaded_model_members(j, &nm->m);
    gw__json_object_end(j);
}

static void probe_json(gw_json *j, const gw__node *n)
{
    if (!n->probed) {
        gw__json_null(j);
        return;
    }
    gw__json_object_begin(j);
    gw__json_kv_str(j, "model", or_null(n->probe_model));
    gw__json_kv_double(j, "seconds", n->probe_seconds > 0, n->probe_seconds);
    gw__json_kv_str(j, "result", or_null(n->probe_result));
    gw__json_kv_str(j, "error", or_null(n->probe_error));
    gw__json_object_end(j);
}

static void node_json(gw_json *j, const gw__node *n, int64_t now_ns)
{
    double age = 0;
    gw__json_object_begin(j);
    gw__json_kv_str(j, "name", n->name);
    gw__json_kv_str(j, "url", n->url);
    gw__json_kv_str(j, "kind", gw__node_kind_name(n->kind));
    gw__json_key(j, "up");
    gw__json_bool(j, n->up);
    gw__json_kv_str(j, "error", n->up ? NULL : or_null(n->error));
    bool has_age = data_age(n, now_ns, &age); /* before age is read */
    gw__json_kv_double(j, "data_age_seconds", has_age, age);
    gw__json_kv_double(j, "answer_seconds", n->kind != GW__NODE_PROMETHEUS && n->fetched_ns,
                       n->answer_seconds);
    gw__json_kv_str(j, "version", or_null(n->version));
    gw__json_kv_str(j, "status", or_null(n->status));
    gw__json_key(j, "cpu_only");
    if (n->kind == GW__NODE_OLLAMA || !n->fetched_ns)
        gw__json_null(j); /* a bare Ollama server does not say */
    else
        gw__json_bool(j, n->n_gpus == 0);
    gw__json_key(j, "gpus");
    gw__json_array_begin(j);
    for (size_t i = 0; i < n->n_gpus; i++)
        gpu_json(j, &n->gpus[i]);
    gw__json_array_end(j);
    gw__json_key(j, "host");
    if (n->has_ram) {
        gw__json_object_begin(j);
        gw__json_kv_u64(j, "memory_total_bytes", true, n->ram_total);
        gw__json_kv_u64(j, "memory_available_bytes", true, n->ram_available);
        gw__json_object_end(j);
    } else {
        gw__json_null(j);
    }
    gw__json_key(j, "models");
    gw__json_array_begin(j);
    for (size_t i = 0; i < n->n_models; i++)
        model_json(j, &n->models[i]);
    gw__json_array_end(j);
    gw__json_key(j, "probe");
    probe_json(j, n);
    gw__json_object_end(j);
}

void gw__cluster_json(gw_json *j, const gw__cluster *c, int64_t now_ns)
{
    gw__cluster_totals t;
    gw__cluster_totals_of(c, &t);
    gw__json_object_begin(j);
    gw__json_kv_str(j, "schema", "gpuwatch.cluster/1");
    gw__json_kv_str(j, "gpuwatch_version", GW_VERSION_STRING);
    gw__json_kv_timestamp(j, "timestamp", c->taken_ns);
    gw__json_kv_double(j, "poll_seconds", true, c->poll_seconds);
    gw__json_kv_str(j, "source", c->from_prometheus ? "prometheus" : "peers");
    gw__json_kv_str(j, "prometheus", c->from_prometheus ? c->prometheus : NULL);
    gw__json_kv_double(j, "prometheus_seconds", c->from_prometheus, c->source_seconds);
    gw__json_kv_str(j, "error", or_null(c->error));
    gw__json_key(j, "totals");
    gw__json_object_begin(j);
    gw__json_kv_u64(j, "nodes", true, t.nodes);
    gw__json_kv_u64(j, "nodes_up", true, t.nodes_up);
    gw__json_kv_u64(j, "nodes_unreachable", true, t.nodes_down);
    gw__json_kv_u64(j, "cpu_only_nodes", true, t.cpu_only_nodes);
    gw__json_kv_u64(j, "gpus", true, t.gpus);
    gw__json_kv_u64(j, "memory_total_bytes", true, t.vram_total);
    gw__json_kv_u64(j, "memory_used_bytes", true, t.vram_used);
    gw__json_kv_u64(j, "memory_free_bytes", true, t.vram_free);
    gw__json_kv_u64(j, "host_memory_total_bytes", true, t.ram_total);
    gw__json_kv_u64(j, "host_memory_available_bytes", true, t.ram_available);
    gw__json_kv_u64(j, "models", true, t.models);
    gw__json_object_end(j);
    gw__json_key(j, "nodes");
    gw__json_array_begin(j);
    for (size_t i = 0; i < c->n_nodes; i++)
        node_json(j, &c->nodes[i], now_ns);
    gw__json_array_end(j);
    gw__json_object_end(j);
}

/* ------------------------------------------------------------ for people */

static const char *size_text(uint64_t b, char *buf, size_t cap)
{
    return gw_place_format_size(b, buf, cap);
}

/* "node-a (URL): gpuwatch 0.1.0, ok, 2 GPUs, VRAM 10.00 GiB used of ..." */
static void node_headline(FILE *out, const gw__node *n, int64_t now_ns)
{
    char a[32], b[32], c[32];
    fprintf(out, "%s (%s)", n->name, n->url);
    if (!n->up) {
        double age;
        fprintf(out, ": UNREACHABLE: %s", n->error);
        if (data_age(n, now_ns, &age))
            fprintf(out, "; last good data %.0f s ago", age);
        else
            fprintf(out, "; no data yet");
        fputc('\n', out);
        return;
    }
    fprintf(out, ": %s%s%s", n->kind == GW__NODE_OLLAMA ? "Ollama" : "gpuwatch",
            n->version[0] ? " " : "", n->version);
    if (n->status[0] && strcmp(n->status, "cpu-only") != 0)
        fprintf(out, ", %s", n->status);
    if (n->kind == GW__NODE_OLLAMA) {
        fprintf(out, ", GPUs not reported (bare Ollama)\n");
        return;
    }
    if (n->n_gpus) {
        uint64_t total = 0, used = 0, free_b = 0;
        for (size_t i = 0; i < n->n_gpus; i++) {
            total += n->gpus[i].dev.total;
            used += n->gpus[i].has_used ? n->gpus[i].used : 0;
            free_b += n->gpus[i].dev.has_free ? n->gpus[i].dev.free : 0;
        }
        fprintf(out, ", %zu GPU%s, VRAM %s used of %s (%s free)\n", n->n_gpus,
                n->n_gpus == 1 ? "" : "s", size_text(used, a, sizeof a),
                size_text(total, b, sizeof b), size_text(free_b, c, sizeof c));
    } else if (n->has_ram) {
        fprintf(out, ", CPU-only, RAM %s used of %s (%s available)\n",
                size_text(n->ram_total - (n->ram_available < n->ram_total ? n->ram_available
                                                                          : n->ram_total),
                          a, sizeof a),
                size_text(n->ram_total, b, sizeof b), size_text(n->ram_available, c, sizeof c));
    } else {
        fprintf(out, ", CPU-only\n");
    }
}

static void node_details(FILE *out, const gw__node *n)
{
    char a[32], b[32], where[24];
    for (size_t i = 0; i < n->n_gpus; i++) {
        const gw__node_gpu *g = &n->gpus[i];
        fprintf(out, "  GPU %-2u %-28.28s %10s / %-10s", g->dev.index,
                g->dev.name[0] ? g->dev.name : "-", g->has_used ? size_text(g->used, a, sizeof a) : "-",
                g->dev.total ? size_text(g->dev.total, b, sizeof b) : "-");
        if (g->has_util)
            fprintf(out, " %3.0f%%", g->util_percent);
        if (g->dev.pending)
            fprintf(out, "  %s reserved", size_text(g->dev.pending, a, sizeof a));
        if (g->dev.state != GW_DEVICE_OK)
            fprintf(out, "  %s", gw_device_state_name(g->dev.state));
        fputc('\n', out);
    }
    for (size_t i = 0; i < n->n_models; i++) {
        const gw__node_model *m = &n->models[i];
        fprintf(out, "  model %-30s %10s on %-8s (%s %s)\n", m->m.name,
                m->m.has_size ? size_text(m->m.size, a, sizeof a) : "-",
                gw__loaded_model_location(&m->m, where, sizeof where),
                gw__server_kind_name(m->kind), m->server);
    }
    if (n->probed) {
        if (n->probe_error[0])
            fprintf(out, "  probe: %s\n", n->probe_error);
        else
            fprintf(out, "  probe: %s loaded for one embedding in %.2f s: %s\n", n->probe_model,
                    n->probe_seconds, n->probe_result);
    } else if (n->up && n->kind == GW__NODE_OLLAMA && !n->n_models) {
        fprintf(out, "  no model loaded (--probe to infer GPU or CPU)\n");
    }
}

void gw__cluster_print(FILE *out, const gw__cluster *c, int64_t now_ns)
{
    gw__cluster_totals t;
    gw__cluster_totals_of(c, &t);
    char a[32], b[32];
    fprintf(out, "Distributed Nodes Report: %zu node%s (%zu up, %zu unreachable), %zu GPU%s, "
                 "VRAM %s free of %s\n",
            t.nodes, t.nodes == 1 ? "" : "s", t.nodes_up, t.nodes_down, t.gpus,
            t.gpus == 1 ? "" : "s", size_text(t.vram_free, a, sizeof a),
            size_text(t.vram_total, b, sizeof b));
    if (c->from_prometheus)
        fprintf(out, "(from Prometheus %s in %.1f ms)\n", c->prometheus, c->poll_seconds * 1e3);
    else
        fprintf(out, "(polled directly in %.1f ms)\n", c->poll_seconds * 1e3);
    if (c->error[0])
        fprintf(out, "error: %s\n", c->error);
    for (size_t i = 0; i < c->n_nodes; i++) {
        fputc('\n', out);
        node_headline(out, &c->nodes[i], now_ns);
        node_details(out, &c->nodes[i]);
    }
}
