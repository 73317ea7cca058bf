/* cmd_gguf.c — `gpuwatch gguf FILE`: what a GGUF file holds, for people
 * (default) or programs (--json).
 *
 * Owns: argument parsing and printing only; the reading is src/gguf. Strings
 * from the file are untrusted bytes: the human output escapes anything not
 * printable ASCII as \xNN, the JSON output passes them through the JSON
 * writer (invalid UTF-8 becomes U+FFFD) after replacing NUL bytes, which a
 * C string cannot carry, with U+FFFD too. Large arrays (a tokenizer's
 * vocabulary) show their type, count and first few elements unless --full. */
#include "cli/cli.h"
#include "core/util.h"
#include "gguf/gguf.h"
#include "render/json_writer.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_MAX_ARRAY 16 /* elements shown per array without --full */
#define HUMAN_MAX_STRING 96  /* bytes of a string shown without --full */

typedef struct gguf_opts {
    const char *path;
    bool json, pretty, tensors, full;
    uint64_t max_array;
} gguf_opts;

static void gguf_usage(FILE *out)
{
    fprintf(out,
            "usage: gpuwatch gguf FILE [--json] [--pretty] [--tensors] [--full]\n"
            "                          [--max-array N]\n"
            "\n"
            "Reads a GGUF model file's header (v2 or v3; tensor data is never read)\n"
            "and prints its metadata and a summary of its tensors by type. Every\n"
            "count, size and offset is checked against the file; a malformed file\n"
            "is refused with the reason.\n"
            "\n"
            "Options:\n"
            "  --json           machine-readable output (numbers as numbers)\n"
            "  --pretty         indent the JSON\n"
            "  --tensors        also list every tensor: name, type, shape, offset, bytes\n"
            "  --full           print arrays and strings whole (default: arrays show\n"
            "                   their first %d elements, long strings are cut)\n"
            "  --max-array N    elements shown per array without --full\n"
            "  -h, --help       this text\n"
            "\n"
            "Exit status: 0 ok, 1 the file cannot be read or is not valid GGUF\n"
            "(\"gpuwatch: FILE: <what is wrong>\" on stderr), 2 usage.\n",
            DEFAULT_MAX_ARRAY);
}

/* Tensors per ggml type id: how many and their bytes (no overflow: the
 * reader proved every tensor lies inside the file). */
static void sum_by_type(const gw_gguf *g, uint64_t count[GW_GGML_TYPE_COUNT],
                        uint64_t bytes[GW_GGML_TYPE_COUNT])
{
    memset(count, 0, GW_GGML_TYPE_COUNT * sizeof *count);
    memset(bytes, 0, GW_GGML_TYPE_COUNT * sizeof *bytes);
    for (size_t t = 0; t < gw_gguf_tensor_count(g); t++) {
        const gw_gguf_tensor *ti = gw_gguf_tensor_at(g, t);
        count[ti->type]++;
        bytes[ti->type] += ti->nbytes;
    }
}

/* ------------------------------------------------------------ human output */

/* Prints s escaped, at most max bytes of it (then "..."). */
static void put_escaped(gw_gguf_str s, size_t max)
{
    putchar('"');
    for (size_t i = 0; i < s.len; i++) {
        if (i == max) {
            fputs("\"...", stdout);
            return;
        }
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            putchar(c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else
            printf("\\x%02x", c);
    }
    putchar('"');
}

/* Prints a key or name bare when it is plain printable ASCII (no space,
 * quote or backslash), else quoted and escaped; pads it to width columns. */
static void put_name(gw_gguf_str s, int width)
{
    bool plain = s.len > 0;
    for (size_t i = 0; i < s.len && plain; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        plain = c > 0x20 && c < 0x7f && c != '"' && c != '\\';
    }
    if (plain) {
        printf("%-*.*s", width, (int)s.len, s.ptr);
        return;
    }
    put_escaped(s, 64);
    if (s.len + 2 < (size_t)width)
        printf("%*s", width - (int)s.len - 2, "");
}

static void put_value(const gw_gguf_value *v, size_t max_string)
{
    uint64_t u;
    int64_t i;
    double f;
    bool b;
    gw_gguf_str s;
    if (gw_gguf_value_str(v, &s))
        put_escaped(s, max_string);
    else if (gw_gguf_value_bool(v, &b))
        fputs(b ? "true" : "false", stdout);
    else if (gw_gguf_value_u64(v, &u))
        printf("%" PRIu64, u);
    else if (gw_gguf_value_i64(v, &i))
        printf("%" PRId64, i);
    else if (gw_gguf_value_f64(v, &f))
        printf("%.9g", f);
}

static void print_human(const gw_gguf *g, const gguf_opts *o)
{
    double gib = 1024.0 * 1024.0 * 1024.0;
    size_t max_string = o->full ? SIZE_MAX : HUMAN_MAX_STRING;
    printf("%s: GGUF v%" PRIu32 ", %zu metadata pairs, %zu tensors\n", o->path,
           gw_gguf_version(g), gw_gguf_kv_count(g), gw_gguf_tensor_count(g));
    printf("  file %" PRIu64 " bytes (%.2f GiB), data section at offset %" PRIu64
           " (alignment %" PRIu64 "), tensor data %" PRIu64 " bytes (%.2f GiB)\n",
           gw_gguf_file_size(g), (double)gw_gguf_file_size(g) / gib, gw_gguf_data_offset(g),
           gw_gguf_alignment(g), gw_gguf_tensor_bytes(g), (double)gw_gguf_tensor_bytes(g) / gib);

    printf("\nMetadata:\n");
    for (size_t k = 0; k < gw_gguf_kv_count(g); k++) {
        const gw_gguf_kv *kv = gw_gguf_kv_at(g, k);
        printf("  ");
        put_name(kv->key, 40);
        gw_gguf_value v;
        if (gw_gguf_kv_value(kv, &v)) {
            printf(" %s = ", gw_gguf_vtype_name(kv->type));
            put_value(&v, max_string);
            putchar('\n');
            continue;
        }
        printf(" %s[%" PRIu64 "] = [", gw_gguf_vtype_name(kv->elem_type), kv->count);
        gw_gguf_iter it;
        gw_gguf_iter_init(&it, kv);
        uint64_t n = 0, show = o->full ? UINT64_MAX : o->max_array;
        while (n < show && gw_gguf_iter_next(&it, &v)) {
            fputs(n ? ", " : "", stdout);
            put_value(&v, max_string);
            n++;
        }
        if (n < kv->count)
            printf("%s... %" PRIu64 " more", n ? ", " : "", kv->count - n);
        printf("]\n");
    }

    uint64_t count[GW_GGML_TYPE_COUNT], bytes[GW_GGML_TYPE_COUNT];
    sum_by_type(g, count, bytes);
    printf("\nTensors by type:\n");
    for (uint32_t id = 0; id < GW_GGML_TYPE_COUNT; id++)
        if (count[id])
            printf("  %-8s %6" PRIu64 " tensors %16" PRIu64 " bytes (%.2f GiB)\n",
                   gw_ggml_type(id)->name, count[id], bytes[id], (double)bytes[id] / gib);
    if (!o->tensors)
        return;
    printf("\nTensors:\n  %-5s %-40s %-8s %-28s %14s %14s\n", "#", "name", "type",
           "shape (ne0 first)", "offset", "bytes");
    for (size_t t = 0; t < gw_gguf_tensor_count(g); t++) {
        const gw_gguf_tensor *ti = gw_gguf_tensor_at(g, t);
        char shape[96] = "[";
        for (uint32_t d = 0; d < ti->n_dims; d++) {
            size_t len = strlen(shape);
            snprintf(shape + len, sizeof shape - len, "%s%" PRIu64, d ? ", " : "", ti->ne[d]);
        }
        size_t len = strlen(shape);
        snprintf(shape + len, sizeof shape - len, "]");
        printf("  %-5zu ", t);
        put_name(ti->name, 40);
        printf(" %-8s %-28s %14" PRIu64 " %14" PRIu64 "\n", ti->info->name, shape, ti->offset,
               ti->nbytes);
    }
}

/* ------------------------------------------------------------- JSON output */

/* A NUL-terminated copy of s in scratch, NUL bytes replaced by U+FFFD. */
static const char *cstr(gw_strbuf *scratch, gw_gguf_str s)
{
    gw__strbuf_reset(scratch);
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] != '\0')
            continue;
        gw__strbuf_append(scratch, s.ptr + start, i - start);
        gw__strbuf_append(scratch, "\xef\xbf\xbd", 3);
        start = i + 1;
    }
    gw__strbuf_append(scratch, s.ptr + start, s.len - start);
    return scratch->failed ? "" : scratch->data;
}

static void json_value(gw_json *j, gw_strbuf *scratch, const gw_gguf_value *v)
{
    uint64_t u;
    int64_t i;
    double f;
    bool b;
    gw_gguf_str s;
    if (gw_gguf_value_str(v, &s))
        gw__json_string(j, cstr(scratch, s));
    else if (gw_gguf_value_bool(v, &b))
        gw__json_bool(j, b);
    else if (gw_gguf_value_u64(v, &u))
        gw__json_u64(j, u);
    else if (gw_gguf_value_i64(v, &i))
        gw__json_i64(j, i);
    else if (gw_gguf_value_f64(v, &f))
        gw__json_double(j, f);
    else
        gw__json_null(j);
}

static void render_json(gw_strbuf *sb, const gw_gguf *g, const gguf_opts *o)
{
    gw_strbuf scratch;
    gw__strbuf_init(&scratch, (size_t)256 << 20);
    gw_json j;
    gw__json_init(&j, sb, o->pretty);
    gw__json_object_begin(&j);
    gw__json_key(&j, "file");
    gw__json_string(&j, o->path);
    gw__json_key(&j, "version");
    gw__json_u64(&j, gw_gguf_version(g));
    gw__json_key(&j, "file_size");
    gw__json_u64(&j, gw_gguf_file_size(g));
    gw__json_key(&j, "alignment");
    gw__json_u64(&j, gw_gguf_alignment(g));
    gw__json_key(&j, "data_offset");
    gw__json_u64(&j, gw_gguf_data_offset(g));
    gw__json_key(&j, "tensor_bytes");
    gw__json_u64(&j, gw_gguf_tensor_bytes(g));
    gw__json_key(&j, "tensor_count");
    gw__json_u64(&j, gw_gguf_tensor_count(g));

    gw__json_key(&j, "metadata");
    gw__json_object_begin(&j);
    for (size_t k = 0; k < gw_gguf_kv_count(g); k++) {
        const gw_gguf_kv *kv = gw_gguf_kv_at(g, k);
        gw__json_key(&j, cstr(&scratch, kv->key));
        gw__json_object_begin(&j);
        gw__json_key(&j, "type");
        gw__json_string(&j, gw_gguf_vtype_name(kv->type));
        gw_gguf_value v;
        if (gw_gguf_kv_value(kv, &v)) {
            gw__json_key(&j, "value");
            json_value(&j, &scratch, &v);
            gw__json_object_end(&j);
            continue;
        }
        gw__json_key(&j, "elem_type");
        gw__json_string(&j, gw_gguf_vtype_name(kv->elem_type));
        gw__json_key(&j, "count");
        gw__json_u64(&j, kv->count);
        gw__json_key(&j, "values");
        gw__json_array_begin(&j);
        gw_gguf_iter it;
        gw_gguf_iter_init(&it, kv);
        uint64_t n = 0, show = o->full ? UINT64_MAX : o->max_array;
        while (n < show && gw_gguf_iter_next(&it, &v)) {
            json_value(&j, &scratch, &v);
            n++;
        }
        gw__json_array_end(&j);
        gw__json_key(&j, "truncated");
        gw__json_bool(&j, n < kv->count);
        gw__json_object_end(&j);
    }
    gw__json_object_end(&j);

    uint64_t count[GW_GGML_TYPE_COUNT], bytes[GW_GGML_TYPE_COUNT];
    sum_by_type(g, count, bytes);
    gw__json_key(&j, "tensor_types");
    gw__json_object_begin(&j);
    for (uint32_t id = 0; id < GW_GGML_TYPE_COUNT; id++) {
        if (!count[id])
            continue;
        gw__json_key(&j, gw_ggml_type(id)->name);
        gw__json_object_begin(&j);
        gw__json_key(&j, "count");
        gw__json_u64(&j, count[id]);
        gw__json_key(&j, "bytes");
        gw__json_u64(&j, bytes[id]);
        gw__json_object_end(&j);
    }
    gw__json_object_end(&j);

    if (o->tensors) {
        gw__json_key(&j, "tensors");
        gw__json_array_begin(&j);
        for (size_t t = 0; t < gw_gguf_tensor_count(g); t++) {
            const gw_gguf_tensor *ti = gw_gguf_tensor_at(g, t);
            gw__json_object_begin(&j);
            gw__json_key(&j, "name");
            gw__json_string(&j, cstr(&scratch, ti->name));
            gw__json_key(&j, "type");
            gw__json_string(&j, ti->info->name);
            gw__json_key(&j, "type_id");
            gw__json_u64(&j, ti->type);
            gw__json_key(&j, "shape");
            gw__json_array_begin(&j);
            for (uint32_t d = 0; d < ti->n_dims; d++)
                gw__json_u64(&j, ti->ne[d]);
            gw__json_array_end(&j);
            gw__json_key(&j, "offset");
            gw__json_u64(&j, ti->offset);
            gw__json_key(&j, "nbytes");
            gw__json_u64(&j, ti->nbytes);
            gw__json_object_end(&j);
        }
        gw__json_array_end(&j);
    }
    gw__json_object_end(&j);
    gw__strbuf_putc(sb, '\n');
    if (scratch.failed)
        sb->failed = true;
    gw__strbuf_release(&scratch);
}

/* ------------------------------------------------------------------ command */

int gw_cmd_gguf(int argc, char **argv)
{
    gguf_opts o = {.max_array = DEFAULT_MAX_ARRAY};
    enum { O_JSON = 1, O_PRETTY, O_TENSORS, O_FULL, O_MAX_ARRAY };
    static const gw_opt opts[] = {
        {"--json", NULL, NULL, O_JSON},       {"--pretty", NULL, NULL, O_PRETTY},
        {"--tensors", NULL, NULL, O_TENSORS}, {"--full", NULL, NULL, O_FULL},
        {"--max-array", NULL, "N", O_MAX_ARRAY}, {NULL, NULL, NULL, 0},
    };
    const gw_opt *const tables[] = {opts, NULL};
    gw_cli_parse p;
    gw_cli_parse_init(&p, "gguf", argc, argv, tables, gguf_usage);
    for (int id; (id = gw_cli_next(&p)) != GW_CLI_DONE;) {
        gw_error why;
        switch (id) {
        case GW_CLI_EXIT_OK: return GW_EXIT_OK;
        case GW_CLI_EXIT_USAGE: return GW_EXIT_USAGE;
        case O_JSON: o.json = true; break;
        case O_PRETTY: o.pretty = true; break;
        case O_TENSORS: o.tensors = true; break;
        case O_FULL: o.full = true; break;
        case O_MAX_ARRAY:
            if (gw__parse_uint(p.scan.value, 0, UINT64_MAX, &o.max_array, &why) != GW_OK)
                return gw_cli_bad_value(&p, &why), GW_EXIT_USAGE;
            break;
        default: /* GW_CLI_ARG */
            if (o.path) {
                fprintf(stderr, "gpuwatch gguf: one FILE only ('%s' and '%s')\n", o.path,
                        p.scan.value);
                return GW_EXIT_USAGE;
            }
            o.path = p.scan.value;
        }
    }
    if (!o.path) {
        fprintf(stderr, "gpuwatch gguf: no FILE given\n");
        gguf_usage(stderr);
        return GW_EXIT_USAGE;
    }

    gw_gguf *g;
    gw_error err;
    gw_error_clear(&err);
    if (gw_gguf_open(&g, o.path, &err) != GW_OK) {
        fprintf(stderr, "gpuwatch: %s\n", err.message);
        return GW_EXIT_ERROR;
    }
    int code = GW_EXIT_OK;
    if (o.json) {
        gw_strbuf sb;
        gw__strbuf_init(&sb, (size_t)1 << 30);
        render_json(&sb, g, &o);
        if (sb.failed) {
            fprintf(stderr, "gpuwatch: %s: out of memory rendering JSON\n", o.path);
            code = GW_EXIT_ERROR;
        } else {
            fwrite(sb.data, 1, sb.len, stdout);
        }
        gw__strbuf_release(&sb);
    } else {
        print_human(g, &o);
    }
    gw_gguf_close(g);
    if (fflush(stdout) != 0)
        code = GW_EXIT_ERROR;
    return code;
}
