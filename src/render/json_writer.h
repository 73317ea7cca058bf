/* json_writer.h — a streaming JSON writer over gw_strbuf.
 *
 * Owns: commas, nesting and string escaping, so renderers only say what to
 * write. Invariants: output is valid UTF-8 JSON as long as calls nest
 * properly (depth <= GW__JSON_MAX_DEPTH); invalid UTF-8 in input strings is
 * replaced by U+FFFD; control characters are escaped; non-finite doubles are
 * written as null. Errors (ENOMEM, too deep) land in the strbuf's failed
 * flag: check sb->failed once at the end.
 */
#ifndef GW_RENDER_JSON_WRITER_H
#define GW_RENDER_JSON_WRITER_H

#include "core/util.h"

#define GW__JSON_MAX_DEPTH 32

typedef struct gw_json {
    gw_strbuf *sb; /* borrowed */
    int depth;
    bool need_comma[GW__JSON_MAX_DEPTH];
    bool after_key;
    bool pretty;
} gw_json;

/* Starts writing into sb (appends; sb stays owned by the caller). */
void gw__json_init(gw_json *j, gw_strbuf *sb, bool pretty);
void gw__json_object_begin(gw_json *j);
void gw__json_object_end(gw_json *j);
void gw__json_array_begin(gw_json *j);
void gw__json_array_end(gw_json *j);
/* Writes a key inside an object; the next call writes its value. */
void gw__json_key(gw_json *j, const char *key);
void gw__json_string(gw_json *j, const char *s); /* NULL -> null */
void gw__json_u64(gw_json *j, uint64_t v);
void gw__json_i64(gw_json *j, int64_t v);
void gw__json_double(gw_json *j, double v);
void gw__json_bool(gw_json *j, bool v);
void gw__json_null(gw_json *j);

/* "key": value-or-null helpers: the value is written only when ok, else
 * null; a NULL or empty string is null. Timestamps are RFC 3339 UTC with
 * milliseconds ("2026-11-23T17:00:00.123Z") from CLOCK_REALTIME ns. */
void gw__json_kv_u64(gw_json *j, const char *key, bool ok, uint64_t v);
void gw__json_kv_double(gw_json *j, const char *key, bool ok, double v);
void gw__json_kv_str(gw_json *j, const char *key, const char *s);
void gw__json_kv_timestamp(gw_json *j, const char *key, int64_t ns);

/* Appends s as a JSON string literal (quotes included) to sb. */
void gw__json_escape(gw_strbuf *sb, const char *s);

#endif
