/* snapshot_json.h — a snapshot as JSON, schema "gpuwatch.report/1"
 * (docs/report-json.md). Used by `report --json` and, later, the HTTP API.
 */
#ifndef GW_RENDER_SNAPSHOT_JSON_H
#define GW_RENDER_SNAPSHOT_JSON_H

#include "render/json_writer.h"

#define GW_REPORT_SCHEMA "gpuwatch.report/2" /* 2: MIG devices (docs/mig.md) */

/* Appends the whole report object for s to sb. Check sb->failed afterwards
 * (ENOMEM); s is only read. */
void gw__render_snapshot_json(gw_strbuf *sb, const gw_snapshot *s, bool pretty);

/* The same document with more(j, arg) writing further keys (key and value
 * pairs) before the closing brace; more NULL: none. */
void gw__render_snapshot_json_with(gw_strbuf *sb, const gw_snapshot *s, bool pretty,
                                   void (*more)(gw_json *j, void *arg), void *arg);

/* Writes one device object (the element of "devices") into j. */
void gw__render_device_json(gw_json *j, const gw_snapshot *s, const gw_device *d);

/* The other parts of the report, for the HTTP API (same keys as in the
 * report): one element of "sources", of "processes", the "host" and the
 * "summary" objects, written into j. Inputs are only read. */
void gw__render_source_json(gw_json *j, const gw_source_status *st);
void gw__render_process_json(gw_json *j, const gw_snapshot *s, const gw_process *p);
void gw__render_host_json(gw_json *j, const gw_host *h);
void gw__render_summary_json(gw_json *j, const gw_snapshot *s);

#endif
