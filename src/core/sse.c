/* sse.c — see sse.h. */
#include "core/sse.h"

#include <string.h>

#define SSE_DEFAULT_MAX (1u << 20)

void gw__sse_init(gw__sse_parser *p, size_t max_event)
{
    memset(p, 0, sizeof *p);
    p->max_event = max_event ? max_event : SSE_DEFAULT_MAX;
    gw__strbuf_init(&p->line, p->max_event + 1);
    gw__strbuf_init(&p->data, p->max_event + 1);
}

void gw__sse_release(gw__sse_parser *p)
{
    gw__strbuf_release(&p->line);
    gw__strbuf_release(&p->data);
}

void gw__sse_reset(gw__sse_parser *p)
{
    gw__strbuf_reset(&p->line);
    gw__strbuf_reset(&p->data);
    p->line.failed = p->data.failed = false;
    p->type[0] = p->id[0] = '\0';
    p->after_cr = p->failed = false;
}

/* The empty line: hands the event over (when it has data) and starts the
 * next one. Returns fn's verdict. */
static bool dispatch(gw__sse_parser *p, gw__sse_fn fn, void *arg)
{
    bool go_on = true;
    if (p->data.len) {
        gw__sse_event ev;
        gw__strlcpy(ev.type, p->type[0] ? p->type : "message", sizeof ev.type);
        gw__strlcpy(ev.id, p->id, sizeof ev.id);
        p->data.data[--p->data.len] = '\0'; /* the last line's '\n' */
        ev.data = p->data.data;
        ev.data_len = p->data.len;
        go_on = fn(arg, &ev);
    }
    gw__strbuf_reset(&p->data);
    p->type[0] = '\0';
    return go_on;
}

/* One complete line (without its end). Returns GW_OK or an error code. */
static int field(gw__sse_parser *p, const char *s, size_t n, gw_error *err)
{
    if (n && s[0] == ':')
        return GW_OK; /* a comment */
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (vlen && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (name_len == 4 && memcmp(s, "data", 4) == 0) {
        if (p->data.len + vlen + 1 > p->max_event)
            return gw__error_set(err, GW_ERANGE, "event stream: an event's data is over %zu bytes",
                                 p->max_event);
        gw__strbuf_append(&p->data, v, vlen);
        gw__strbuf_putc(&p->data, '\n');
        if (p->data.failed)
            return gw__error_set(err, GW_ENOMEM, "event stream: out of memory");
    } else if (name_len == 5 && memcmp(s, "event", 5) == 0) {
        size_t k = vlen < sizeof p->type - 1 ? vlen : sizeof p->type - 1;
        memcpy(p->type, v, k);
        p->type[k] = '\0';
    } else if (name_len == 2 && memcmp(s, "id", 2) == 0 && !memchr(v, '\0', vlen)) {
        size_t k = vlen < sizeof p->id - 1 ? vlen : sizeof p->id - 1;
        memcpy(p->id, v, k);
        p->id[k] = '\0';
    }
    return GW_OK;
}

int gw__sse_feed(gw__sse_parser *p, const char *buf, size_t n, gw__sse_fn fn, void *arg,
                 gw_error *err)
{
    if (p->failed)
        return gw__error_set(err, GW_ERANGE, "event stream: the parser failed earlier");
    for (size_t i = 0; i < n;) {
        char c = buf[i];
        if (c == '\n' && p->after_cr) { /* the LF of a CRLF */
            p->after_cr = false;
            i++;
            continue;
        }
        p->after_cr = false;
        if (c == '\n' || c == '\r') {
            p->after_cr = c == '\r';
            i++;
            int rc = p->line.len ? field(p, p->line.data, p->line.len, err) : GW_OK;
            bool empty = p->line.len == 0;
            gw__strbuf_reset(&p->line);
            if (rc != GW_OK) {
                p->failed = true;
                return rc;
            }
            if (empty && !dispatch(p, fn, arg))
                return GW_OK;
            continue;
        }
        /* the rest of this line in one append */
        size_t end = i;
        while (end < n && buf[end] != '\n' && buf[end] != '\r')
            end++;
        if (p->line.len + (end - i) > p->max_event) {
            p->failed = true;
            return gw__error_set(err, GW_ERANGE, "event stream: a line is over %zu bytes",
                                 p->max_event);
        }
        gw__strbuf_append(&p->line, buf + i, end - i);
        if (p->line.failed) {
            p->failed = true;
            return gw__error_set(err, GW_ENOMEM, "event stream: out of memory");
        }
        i = end;
    }
    return GW_OK;
}
