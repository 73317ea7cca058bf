/* negotiate.h — which representation of a cached body a request gets, and
 * the gzip coding that makes one of them.
 *
 * Owns: the parsers of the Accept-Encoding and Accept request headers (RFC
 * 9110 12.5.1 / 12.5.3: comma-separated elements, optional parameters,
 * q-values 0..1 with at most three decimals), the choice they lead to, and
 * gzip compression (zlib) at one fixed level.
 *
 * Decisions (docs/serve.md "Compression and formats" is the user's view):
 *  - Codings offered: gzip and identity. gzip wins when its q is > 0 and at
 *    least identity's (a tie goes to gzip: that is why it is asked for).
 *    "x-gzip" is gzip. "*" gives its q to every coding not named.
 *  - identity is acceptable unless named with q=0, or "*;q=0" without an
 *    identity element. When neither gzip nor identity is acceptable the
 *    answer is GW__ENC_NONE: the server replies 406 naming what it offers.
 *  - No Accept-Encoding header: identity. An empty one: identity too (RFC
 *    9110: "no coding wanted").
 *  - Formats: OpenMetrics 1.0.0 text when application/openmetrics-text
 *    (version absent, 1.0.0 or 0.0.1) has a higher q than every range that
 *    matches the Prometheus text format (text/plain with version absent or
 *    0.0.4, text/\*, \*\/\*), or the same q and comes first. Anything else,
 *    including no Accept header and a header that accepts neither, gets the
 *    Prometheus text format (every scraper reads it; 406 would help none).
 *  - Garbage: an element that does not parse (bad token, bad q, stray
 *    characters) is skipped; the rest of the header still counts.
 *
 * Invariants:
 *  1. The parsers read only the NUL-terminated string they are given, never
 *     allocate, and accept any byte sequence (tested with garbage).
 *  2. gw__gzip output is a complete gzip member (RFC 1952) that zlib's
 *     gunzip restores to exactly the input.
 */
#ifndef GW_HTTP_NEGOTIATE_H
#define GW_HTTP_NEGOTIATE_H

#include "core/util.h"

typedef enum gw__encoding {
    GW__ENC_IDENTITY = 0,
    GW__ENC_GZIP = 1,
    GW__ENC_COUNT = 2,
    GW__ENC_NONE = -1 /* nothing acceptable: 406 */
} gw__encoding;

typedef enum gw__format {
    GW__FMT_PROMETHEUS = 0, /* text/plain; version=0.0.4 */
    GW__FMT_OPENMETRICS = 1, /* application/openmetrics-text; version=1.0.0 */
    GW__FMT_COUNT = 2
} gw__format;

/* zlib level of every gzip body (zlib's default trade-off). */
#define GW__GZIP_LEVEL 6

/* The coding for a request whose Accept-Encoding is `header` (NULL: no
 * such header). Never fails. */
gw__encoding gw__negotiate_encoding(const char *header);

/* The /metrics format for a request whose Accept is `header` (NULL: none).
 * Never fails. */
gw__format gw__negotiate_format(const char *header);

/* Whether a request for "/" with Accept `header` (NULL: none) gets the web
 * page rather than the JSON index: text/html or application/xhtml+xml is
 * named with a q above application/json's (a browser's Accept; a tie
 * goes to JSON, which a script naming it wants);
 * wildcards count for neither, so curl's "*\/\*" and no header get JSON.
 * Never fails. */
bool gw__negotiate_html(const char *header);

/* Stable names, as in gpuwatch_scrapes_total's labels: "identity"/"gzip",
 * "prometheus"/"openmetrics". Static. */
const char *gw__encoding_name(gw__encoding e);
const char *gw__format_name(gw__format f);

/* Appends data[0..len) compressed as one gzip member (GW__GZIP_LEVEL) to
 * out. Returns GW_OK, or GW_ENOMEM (out marked failed) when zlib or out
 * cannot get memory. */
int gw__gzip(gw_strbuf *out, const char *data, size_t len);

#endif
