/* assets.c — see assets.h. Owns the lookup of embedded files and the cache
 * of their responses. */
#include "http/assets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const gw__asset *gw__asset_find(const char *name, size_t len)
{
    for (size_t i = 0; i < gw__n_assets; i++)
        if (strlen(gw__assets[i].name) == len && memcmp(gw__assets[i].name, name, len) == 0)
            return &gw__assets[i];
    return NULL;
}

void gw__asset_etag(const gw__asset *a, gw__encoding enc, char out[GW__ETAG_MAX])
{
    size_t n = strlen(a->etag); /* quoted: "..." */
    snprintf(out, GW__ETAG_MAX, "%.*s%s\"", (int)(n - 1), a->etag,
             enc == GW__ENC_GZIP ? "-gzip" : "");
}

const char *gw__asset_vary(const gw__asset *a)
{
    return strcmp(a->name, "index.html") == 0 ? "Accept, Accept-Encoding" : "Accept-Encoding";
}

int gw__assets_init(gw__asset_cache *c, const gw__mhd_lib *lib, gw_error *err)
{
    memset(c, 0, sizeof *c);
    c->resp = calloc(gw__n_assets * GW__ENC_COUNT, sizeof *c->resp);
    if (!c->resp)
        return gw__error_set(err, GW_ENOMEM, "http: out of memory for the page's files");
    c->lib = lib;
    pthread_mutex_init(&c->lock, NULL);
    return GW_OK;
}

void gw__assets_free(gw__asset_cache *c)
{
    if (!c->resp)
        return;
    for (size_t i = 0; i < gw__n_assets * GW__ENC_COUNT; i++) {
        struct MHD_Response *r = atomic_load(&c->resp[i]);
        if (r)
            c->lib->destroy_response(r);
    }
    free((void *)c->resp);
    pthread_mutex_destroy(&c->lock);
    memset(c, 0, sizeof *c);
}

void gw__assets_secure(const gw__mhd_lib *lib, struct MHD_Response *r)
{
    lib->add_response_header(r, "Content-Security-Policy", GW__PAGE_CSP);
    lib->add_response_header(r, "X-Content-Type-Options", "nosniff");
    lib->add_response_header(r, "Referrer-Policy", "no-referrer");
    lib->add_response_header(r, "X-Frame-Options", "DENY");
}

/* A new response holding a's bytes in coding enc; NULL when out of memory. */
static struct MHD_Response *make(const gw__mhd_lib *lib, const gw__asset *a, gw__encoding enc)
{
    struct MHD_Response *r;
    if (enc == GW__ENC_GZIP) {
        gw_strbuf z;
        gw__strbuf_init(&z, 0);
        if (gw__gzip(&z, (const char *)a->data, a->len) != GW_OK) {
            gw__strbuf_release(&z);
            return NULL;
        }
        r = lib->create_response_from_buffer(z.len, z.data, MHD_RESPMEM_MUST_COPY);
        gw__strbuf_release(&z);
        if (r)
            lib->add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    } else {
        r = lib->create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    }
    if (!r)
        return NULL;
    char etag[GW__ETAG_MAX];
    gw__asset_etag(a, enc, etag);
    lib->add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    lib->add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    lib->add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    lib->add_response_header(r, MHD_HTTP_HEADER_VARY, gw__asset_vary(a));
    gw__assets_secure(lib, r);
    return r;
}

struct MHD_Response *gw__assets_response(gw__asset_cache *c, const gw__asset *a,
                                         gw__encoding enc)
{
    size_t slot = (size_t)(a - gw__assets) * GW__ENC_COUNT + (size_t)enc;
    struct MHD_Response *r = atomic_load(&c->resp[slot]);
    if (r)
        return r;
    pthread_mutex_lock(&c->lock);
    r = atomic_load(&c->resp[slot]);
    if (!r) {
        r = make(c->lib, a, enc);
        if (r)
            atomic_store(&c->resp[slot], r);
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

/* One entity tag at p (after blanks): its opaque part [*s, *e) without W/
 * and quotes. Returns the position after it, or NULL when malformed. */
static const char *etag_at(const char *p, const char **s, const char **e)
{
    if (p[0] == 'W' && p[1] == '/')
        p += 2;
    if (*p != '"')
        return NULL;
    *s = ++p;
    while (*p && *p != '"')
        p++;
    if (*p != '"')
        return NULL;
    *e = p;
    return p + 1;
}

bool gw__etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return false;
    const char *want = etag + 1; /* etag is quoted */
    size_t want_len = strlen(want) - 1;
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        const char *s, *e;
        const char *next = etag_at(p, &s, &e);
        if (!next)
            return false; /* garbage: not a match, the full answer is sent */
        if ((size_t)(e - s) == want_len && memcmp(s, want, want_len) == 0)
            return true;
        p = next;
    }
    return false;
}

bool gw__assets_check(void)
{
    for (size_t i = 0; i < gw__n_assets; i++) {
        const gw__asset *a = &gw__assets[i];
        size_t n = a->etag ? strlen(a->etag) : 0;
        if (!a->name || !a->name[0] || strchr(a->name, '/') || !a->type || n < 3 ||
            a->etag[0] != '"' || a->etag[n - 1] != '"' || !a->data)
            return false;
        for (size_t k = 0; k < i; k++)
            if (strcmp(gw__assets[k].name, a->name) == 0)
                return false;
    }
    return true;
}
