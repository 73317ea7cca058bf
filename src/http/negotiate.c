/* negotiate.c — see negotiate.h. One scanner reads both headers: it walks
 * the comma-separated elements, each `name *( ";" param )`, and hands each
 * one (name, q in thousandths, the "version" parameter) to the caller's
 * rule. A malformed element is skipped up to the next comma outside a
 * quoted string.
 *
 * Worked example: `gzip;q=0.5, identity;q=0, x-y;q=2` gives the elements
 * gzip (500), identity (0) and a bad one (q above 1, skipped): gzip.
 */
#include "http/negotiate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

typedef struct elem {
    const char *name; /* view into the header */
    size_t name_len;
    const char *version; /* the version parameter's value (unquoted); NULL: none */
    size_t version_len;
    int q; /* 0..1000 */
} elem;

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static const char *token(const char *p)
{
    while (is_tchar(*p))
        p++;
    return p;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in
 * thousandths; -1 when v[0..n) is not one. */
static int parse_q(const char *v, size_t n)
{
    if (n == 0 || (v[0] != '0' && v[0] != '1') || (n > 1 && v[1] != '.') || n > 5)
        return -1;
    int q = (v[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (v[i] < '0' || v[i] > '9' || (v[0] == '1' && v[i] != '0'))
            return -1;
        q += (v[i] - '0') * scale;
    }
    return q;
}

/* After a malformed element: the position after the next comma outside a
 * quoted string, or the end. */
static const char *skip_element(const char *p)
{
    bool quoted = false;
    for (; *p; p++) {
        if (quoted && *p == '\\' && p[1])
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (*p == ',' && !quoted)
            return p + 1;
    }
    return p;
}

/* One parameter at p (after ";" and blanks): updates e for q and version.
 * Returns the position after it, or NULL when malformed. */
static const char *param(const char *p, elem *e)
{
    const char *k = p, *ke = token(p);
    if (ke == k || *ke != '=')
        return NULL;
    const char *v = ke + 1, *ve;
    if (*v == '"') {
        v++;
        for (ve = v; *ve && *ve != '"'; ve++)
            if (*ve == '\\' && ve[1])
                ve++;
        if (*ve != '"')
            return NULL;
        p = ve + 1;
    } else {
        ve = token(v);
        if (ve == v)
            return NULL;
        p = ve;
    }
    size_t kn = (size_t)(ke - k), vn = (size_t)(ve - v);
    if (kn == 1 && (*k == 'q' || *k == 'Q')) {
        e->q = parse_q(v, vn);
        if (e->q < 0)
            return NULL;
    } else if (kn == 7 && strncasecmp(k, "version", 7) == 0) {
        e->version = v;
        e->version_len = vn;
    }
    return p;
}

/* Reads the element at *pp into e and moves *pp past it. Returns 1 for a
 * good element, 0 for a malformed or empty one (skipped), -1 at the end. */
static int next_elem(const char **pp, elem *e)
{
    const char *p = skip_ows(*pp);
    if (!*p)
        return -1;
    memset(e, 0, sizeof *e);
    e->q = 1000;
    e->name = p;
    p = token(p);
    if (*p == '/' && p > e->name)
        p = token(p + 1);
    e->name_len = (size_t)(p - e->name);
    bool ok = e->name_len > 0 && e->name[e->name_len - 1] != '/';
    for (;;) {
        p = skip_ows(p);
        if (!ok || *p != ';')
            break;
        p = param(skip_ows(p + 1), e);
        if (!p) {
            ok = false;
            p = e->name; /* resynchronise below */
            break;
        }
    }
    if (ok && (*p == ',' || !*p)) {
        *pp = *p ? p + 1 : p;
        return 1;
    }
    *pp = skip_element(ok ? p : e->name);
    return 0;
}

static bool named(const elem *e, const char *s)
{
    return e->name_len == strlen(s) && strncasecmp(e->name, s, e->name_len) == 0;
}

static bool version_is(const elem *e, const char *v)
{
    return e->version_len == strlen(v) && memcmp(e->version, v, e->version_len) == 0;
}

gw__encoding gw__negotiate_encoding(const char *header)
{
    if (!header)
        return GW__ENC_IDENTITY;
    int q_gzip = -1, q_id = -1, q_star = -1, r;
    elem e;
    for (const char *p = header; (r = next_elem(&p, &e)) >= 0;) {
        if (r == 0)
            continue;
        int *slot = named(&e, "gzip") || named(&e, "x-gzip") ? &q_gzip
                    : named(&e, "identity")                  ? &q_id
                    : named(&e, "*")                         ? &q_star
                                                             : NULL;
        if (slot && *slot < 0) /* the first element naming a coding counts */
            *slot = e.q;
    }
    int gzip = q_gzip >= 0 ? q_gzip : q_star >= 0 ? q_star : 0;
    bool id_explicit = q_id >= 0 || q_star >= 0;
    int id = q_id >= 0 ? q_id : q_star >= 0 ? q_star : 1000;
    if (gzip > 0 && (!id_explicit || gzip >= id))
        return GW__ENC_GZIP;
    return id > 0 ? GW__ENC_IDENTITY : GW__ENC_NONE;
}

gw__format gw__negotiate_format(const char *header)
{
    if (!header)
        return GW__FMT_PROMETHEUS;
    int om_q = 0, text_q = 0, om_pos = -1, text_pos = -1, pos = 0, r;
    elem e;
    for (const char *p = header; (r = next_elem(&p, &e)) >= 0; pos++) {
        if (r == 0 || e.q == 0)
            continue;
        bool om = named(&e, "application/openmetrics-text") &&
                  (!e.version || version_is(&e, "1.0.0") || version_is(&e, "0.0.1"));
        bool text = (named(&e, "text/plain") && (!e.version || version_is(&e, "0.0.4"))) ||
                    named(&e, "text/*") || named(&e, "*/*");
        if (om && e.q > om_q) {
            om_q = e.q;
            om_pos = pos;
        }
        if (text && e.q > text_q) {
            text_q = e.q;
            text_pos = pos;
        }
    }
    if (om_q > 0 && (om_q > text_q || (om_q == text_q && om_pos < text_pos)))
        return GW__FMT_OPENMETRICS;
    return GW__FMT_PROMETHEUS;
}

bool gw__negotiate_html(const char *header)
{
    if (!header)
        return false;
    int html_q = 0, json_q = 0, r;
    elem e;
    for (const char *p = header; (r = next_elem(&p, &e)) >= 0;) {
        if (r == 0)
            continue;
        if ((named(&e, "text/html") || named(&e, "application/xhtml+xml")) && e.q > html_q)
            html_q = e.q;
        if (named(&e, "application/json") && e.q > json_q)
            json_q = e.q;
    }
    return html_q > json_q;
}

const char *gw__encoding_name(gw__encoding e)
{
    return e == GW__ENC_GZIP ? "gzip" : e == GW__ENC_IDENTITY ? "identity" : "none";
}

const char *gw__format_name(gw__format f)
{
    return f == GW__FMT_OPENMETRICS ? "openmetrics" : "prometheus";
}

int gw__gzip(gw_strbuf *out, const char *data, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer instead of zlib's. */
    if (len > UINT32_MAX ||
        deflateInit2(&z, GW__GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        out->failed = true;
        return GW_ENOMEM;
    }
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *buf = malloc(cap);
    int rc = Z_MEM_ERROR;
    if (buf) {
        z.next_in = (Bytef *)(uintptr_t)data;
        z.avail_in = (uInt)len;
        z.next_out = buf;
        z.avail_out = (uInt)cap;
        rc = deflate(&z, Z_FINISH); /* deflateBound: one call always finishes */
    }
    if (rc == Z_STREAM_END)
        gw__strbuf_append(out, (const char *)buf, z.total_out);
    deflateEnd(&z);
    free(buf);
    if (rc != Z_STREAM_END) {
        out->failed = true;
        return GW_ENOMEM;
    }
    return out->failed ? GW_ENOMEM : GW_OK;
}
