/* daemon_client.c — see daemon_client.h: URL parsing, a strict HTTP/1.x
 * response parser over a caller's buffer, and one request per TCP connection
 * with poll deadlines. The parser never trusts a length it did not check
 * against the buffer and the caps; the transport grows its buffer only up to
 * head cap + body cap.
 */
#include "place/daemon_client.h"
#include "core/parse.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int gw_daemon_url_parse(const char *text, gw_daemon_url *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    if (!text || strncmp(text, "http://", 7) != 0)
        return gw__error_set(err, GW_EINVAL, "URL '%s': only http://HOST:PORT is supported",
                             text ? text : "");
    if (strlen(text) >= sizeof out->text)
        return gw__error_set(err, GW_EINVAL, "URL '%.60s...': too long", text);
    gw__strlcpy(out->text, text, sizeof out->text);
    size_t n = strlen(out->text);
    if (n > 7 && out->text[n - 1] == '/')
        out->text[--n] = '\0';
    const char *h = out->text + 7, *colon;
    size_t hl;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close || close[1] != ':')
            return gw__error_set(err, GW_EINVAL, "URL '%s': bad [IPv6]:PORT", text);
        hl = (size_t)(close - h - 1);
        h++;
        colon = close + 1;
    } else {
        colon = strrchr(h, ':');
        if (!colon)
            return gw__error_set(err, GW_EINVAL, "URL '%s': no :PORT", text);
        hl = (size_t)(colon - h);
    }
    if (hl == 0 || hl >= sizeof out->host)
        return gw__error_set(err, GW_EINVAL, "URL '%s': bad host", text);
    memcpy(out->host, h, hl);
    out->host[hl] = '\0';
    for (size_t i = 0; i < hl; i++)
        if (out->host[i] == '/' || out->host[i] == '@' || out->host[i] == ' ')
            return gw__error_set(err, GW_EINVAL, "URL '%s': bad host", text);
    uint64_t port;
    gw_error why;
    if (gw__parse_uint(colon + 1, 1, 65535, &port, &why) != GW_OK)
        return gw__error_set(err, GW_EINVAL, "URL '%s': bad port: %s", text, why.message);
    snprintf(out->port, sizeof out->port, "%u", (unsigned)port);
    return GW_OK;
}

const char *gw_daemon_authority(const gw_daemon_url *u, char *buf, size_t cap)
{
    bool v6 = strchr(u->host, ':') != NULL;
    snprintf(buf, cap, "%s%s%s:%s", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
    return buf;
}

void gw_daemon_response_release(gw_daemon_response *r)
{
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Visible text of a header value or a reason phrase: no control byte but TAB. */
static bool is_text(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Whether buf[a..b) is the token tok (case-insensitive). */
static bool token_is(const char *buf, size_t a, size_t b, const char *tok)
{
    size_t n = strlen(tok);
    return b - a == n && strncasecmp(buf + a, tok, n) == 0;
}

/* The "close" and "keep-alive" options of a Connection value buf[val..end)
 * (a comma-separated list; other options are ignored). */
static void connection_options(const char *buf, size_t val, size_t end, gw_http_head *h,
                               bool *keep_alive)
{
    for (size_t a = val; a < end;) {
        while (a < end && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == ','))
            a++;
        size_t b = a;
        while (b < end && buf[b] != ',')
            b++;
        size_t t = b;
        while (t > a && (buf[t - 1] == ' ' || buf[t - 1] == '\t'))
            t--;
        if (token_is(buf, a, t, "close"))
            h->close = true;
        else if (token_is(buf, a, t, "keep-alive"))
            *keep_alive = true;
        a = b;
    }
}

/* One header field, name buf[name..+name_len), value buf[val..end) (OWS
 * trimmed): the ones gw_http_head holds go into *h. */
static int header_field(const char *buf, size_t name, size_t name_len, size_t val, size_t end,
                        gw_http_head *h, bool *keep_alive, gw_error *err)
{
    if (token_is(buf, name, name + name_len, "Content-Length")) {
        if (h->has_length)
            return gw__error_set(err, GW_EPARSE, "HTTP response: Content-Length twice");
        if (end == val || end - val > 10)
            return gw__error_set(err, GW_EPARSE, "HTTP response: bad Content-Length");
        for (size_t i = val; i < end; i++) {
            if (buf[i] < '0' || buf[i] > '9')
                return gw__error_set(err, GW_EPARSE, "HTTP response: bad Content-Length");
            h->length = h->length * 10 + (uint64_t)(buf[i] - '0');
        }
        h->has_length = true;
    } else if (token_is(buf, name, name + name_len, "Transfer-Encoding")) {
        if (h->chunked)
            return gw__error_set(err, GW_EPARSE, "HTTP response: Transfer-Encoding twice");
        if (!token_is(buf, val, end, "chunked"))
            return gw__error_set(err, GW_EPARSE, "HTTP response: Transfer-Encoding '%.*s' is "
                                                 "not supported (only chunked)",
                                 (int)(end - val > 40 ? 40 : end - val), buf + val);
        h->chunked = true;
    } else if (token_is(buf, name, name + name_len, "Connection")) {
        connection_options(buf, val, end, h, keep_alive);
    } else if (token_is(buf, name, name + name_len, "Content-Type")) {
        if (h->ctype_off)
            return gw__error_set(err, GW_EPARSE, "HTTP response: Content-Type twice");
        h->ctype_off = val;
        h->ctype_len = end - val;
    }
    return GW_OK;
}

int gw_http_head_parse(const char *buf, size_t len, gw_http_head *h, gw_error *err)
{
    static const char proto[] = "HTTP/1.";
    bool keep_alive = false;
    memset(h, 0, sizeof *h);
    size_t pre = len < 7 ? len : 7;
    if (memcmp(buf, proto, pre) != 0)
        return gw__error_set(err, GW_EPARSE, "HTTP response: not HTTP/1.x (starts '%.*s')",
                             (int)(pre), buf);
    /* the head ends at the first empty line */
    size_t scan = len < GW_DAEMON_MAX_HEAD ? len : GW_DAEMON_MAX_HEAD;
    size_t head_end = 0;
    for (size_t i = 0; i + 3 < scan; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
            head_end = i + 4;
            break;
        }
    if (!head_end) {
        if (len >= GW_DAEMON_MAX_HEAD)
            return gw__error_set(err, GW_ERANGE, "HTTP response: head over %u bytes",
                                 GW_DAEMON_MAX_HEAD);
        return 1;
    }
    /* status line: HTTP/1.x SP DDD [SP reason] CRLF */
    if ((buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
        return gw__error_set(err, GW_EPARSE, "HTTP response: bad HTTP version");
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return gw__error_set(err, GW_EPARSE, "HTTP response: bad status code");
        status = status * 10 + (buf[i] - '0');
    }
    if (status < 100 || status > 599)
        return gw__error_set(err, GW_EPARSE, "HTTP response: status %d out of range", status);
    size_t p = 12;
    if (buf[p] == ' ') {
        for (p++; buf[p] != '\r'; p++)
            if (!is_text((unsigned char)buf[p]))
                return gw__error_set(err, GW_EPARSE, "HTTP response: control byte in the "
                                                     "status line");
    }
    if (buf[p] != '\r' || buf[p + 1] != '\n')
        return gw__error_set(err, GW_EPARSE, "HTTP response: bad status line");
    p += 2;
    /* header lines until the empty line at head_end - 2 */
    while (p < head_end - 2) {
        size_t name = p;
        while (p < head_end && is_tchar((unsigned char)buf[p]))
            p++;
        if (p == name || buf[p] != ':')
            return gw__error_set(err, GW_EPARSE, "HTTP response: bad header line at byte %zu",
                                 name);
        size_t name_len = p - name;
        p++;
        while (buf[p] == ' ' || buf[p] == '\t')
            p++;
        size_t val = p;
        while (buf[p] != '\r') {
            if (!is_text((unsigned char)buf[p]))
                return gw__error_set(err, GW_EPARSE, "HTTP response: control byte in a header "
                                                     "at byte %zu", p);
            p++;
        }
        if (buf[p + 1] != '\n')
            return gw__error_set(err, GW_EPARSE, "HTTP response: bare CR in the head");
        size_t val_end = p;
        while (val_end > val && (buf[val_end - 1] == ' ' || buf[val_end - 1] == '\t'))
            val_end--;
        p += 2;
        int rc = header_field(buf, name, name_len, val, val_end, h, &keep_alive, err);
        if (rc != GW_OK)
            return rc;
    }
    if (h->chunked && h->has_length)
        return gw__error_set(err, GW_EPARSE, "HTTP response: both Transfer-Encoding: chunked "
                                             "and Content-Length");
    if (h->chunked && buf[7] == '0') /* RFC 9112 6.1: the framing is faulty */
        return gw__error_set(err, GW_EPARSE, "HTTP response: Transfer-Encoding in an HTTP/1.0 "
                                             "answer");
    if (buf[7] == '0' && !keep_alive)
        h->close = true;
    h->status = status;
    h->head_len = head_end;
    return GW_OK;
}

int gw_http_body_frame(size_t len, const gw_http_head *h, bool eof, size_t max_body,
                       size_t *body_len, gw_error *err)
{
    size_t have = len - h->head_len;
    if (h->chunked) /* the pool's client decodes it (pool/chunked.h); no reader here does */
        return gw__error_set(err, GW_EPARSE, "HTTP response: chunked transfer coding is not "
                                             "accepted by this reader (expected Content-Length "
                                             "or a body ending with the connection)");
    if (h->status < 200) /* an HTTP/1.0 request is never answered 1xx */
        return gw__error_set(err, GW_EPARSE, "HTTP response: an interim %d answer", h->status);
    if (h->status == 204 || h->status == 304) { /* no body, whatever a length says */
        if (have)
            return gw__error_set(err, GW_EPARSE, "HTTP response: %zu bytes after a %d answer",
                                 have, h->status);
        *body_len = 0;
        return GW_OK;
    }
    if (!h->has_length) {
        if (have > max_body)
            return gw__error_set(err, GW_ERANGE, "HTTP response: body over %zu bytes", max_body);
        if (!eof)
            return 1; /* the body ends where the connection does */
        *body_len = have;
        return GW_OK;
    }
    uint64_t want = h->length;
    if (want > max_body)
        return gw__error_set(err, GW_ERANGE, "HTTP response: body of %llu bytes is over %zu",
                             (unsigned long long)want, max_body);
    if (have > want)
        return gw__error_set(err, GW_EPARSE, "HTTP response: %zu bytes after the body",
                             (size_t)(have - want));
    if (have < want)
        return eof ? gw__error_set(err, GW_EPARSE, "HTTP response: connection closed after %zu "
                                                   "of %llu body bytes", have,
                                   (unsigned long long)want)
                   : 1;
    *body_len = have;
    return GW_OK;
}

int gw_daemon_response_parse(const char *buf, size_t len, bool eof, gw_daemon_response *out,
                             gw_error *err)
{
    memset(out, 0, sizeof *out);
    gw_http_head h;
    size_t body_len = 0;
    int rc = gw_http_head_parse(buf, len, &h, err);
    if (rc == GW_OK)
        rc = gw_http_body_frame(len, &h, eof, GW_DAEMON_MAX_BODY, &body_len, err);
    if (rc != GW_OK)
        return rc;
    char *body = malloc(body_len + 1);
    if (!body)
        return gw__error_set(err, GW_ENOMEM, "daemon response: out of memory");
    memcpy(body, buf + h.head_len, body_len);
    body[body_len] = '\0';
    out->status = h.status;
    out->body = body;
    out->body_len = body_len;
    return GW_OK;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

/* Waits for events on fd; GW_ETIMEDOUT / GW_EIO naming what. */
static int wait_fd(int fd, short events, int timeout_ms, const gw_daemon_url *u, const char *what,
                   gw_error *err)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    for (;;) {
        int n = poll(&pfd, 1, timeout_ms);
        if (n > 0)
            return GW_OK;
        if (n == 0)
            return gw__error_set(err, GW_ETIMEDOUT, "daemon %s: no answer within %d ms while %s",
                                 u->text, timeout_ms, what);
        if (errno != EINTR)
            return gw__error_set(err, GW_EIO, "daemon %s: poll: %s", u->text, strerror(errno));
    }
}

/* Connects (non-blocking) to the first loopback address that accepts. */
static int connect_to(const gw_daemon_url *u, int timeout_ms, int *fd_out, gw_error *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(u->host, u->port, &hints, &res);
    if (g != 0)
        return gw__error_set(err, GW_EINVAL, "daemon %s: cannot resolve '%s': %s", u->text,
                             u->host, gai_strerror(g));
    int rc = gw__error_set(err, GW_EPERM, "daemon %s: '%s' is not a loopback address (the "
                                          "daemon client talks to this host only)", u->text, u->host);
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        if (!u->any_host && !is_loopback(a->ai_addr))
            continue;
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            rc = gw__error_set(err, GW_EIO, "daemon %s: socket: %s", u->text, strerror(errno));
            continue;
        }
        int c = connect(fd, a->ai_addr, a->ai_addrlen);
        int e = c == 0 ? 0 : errno;
        if (e == EINPROGRESS) {
            rc = wait_fd(fd, POLLOUT, timeout_ms, u, "connecting", err);
            if (rc) {
                close(fd);
                continue;
            }
            socklen_t sl = sizeof e;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
                e = errno;
        }
        if (e == 0) {
            *fd_out = fd;
            freeaddrinfo(res);
            gw_error_clear(err);
            return GW_OK;
        }
        close(fd);
        if (e == ECONNREFUSED)
            rc = gw__error_set(err, GW_ENOENT, "daemon %s: nothing listens (connection refused)",
                               u->text);
        else
            rc = gw__error_set(err, GW_EIO, "daemon %s: connect: %s", u->text, strerror(e));
    }
    freeaddrinfo(res);
    return rc;
}

/* Sends data[0..len) on the non-blocking fd, waiting at most timeout_ms
 * per step. */
static int send_all(int fd, const char *data, size_t len, int timeout_ms, const gw_daemon_url *u,
                    gw_error *err)
{
    int rc = GW_OK;
    for (size_t off = 0; off < len && !rc;) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_fd(fd, POLLOUT, timeout_ms, u, "sending the request", err);
        } else if (n < 0 && errno != EINTR) {
            rc = gw__error_set(err, GW_EIO, "daemon %s: send: %s", u->text, strerror(errno));
        }
    }
    return rc;
}

void gw_daemon_request_text(gw_strbuf *req, const gw_daemon_url *u, const char *method,
                            const char *path, const char *token, const char *body, size_t len)
{
    char authority[sizeof u->host + sizeof u->port + 4];
    gw__strbuf_printf(req, "%s %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n"
                           "Accept: application/json\r\n", method, path,
                      gw_daemon_authority(u, authority, sizeof authority));
    if (token && *token)
        gw__strbuf_printf(req, "Authorization: Bearer %s\r\n", token);
    if (body)
        gw__strbuf_printf(req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", len);
    else if (strcmp(method, "POST") == 0)
        gw__strbuf_puts(req, "Content-Length: 0\r\n");
    gw__strbuf_puts(req, "\r\n");
    if (body)
        gw__strbuf_append(req, body, len);
}

int gw_daemon_request(const gw_daemon_url *u, const char *method, const char *path,
                      const char *token, const char *body, size_t len, int timeout_ms,
                      gw_daemon_response *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    gw_strbuf req;
    gw__strbuf_init(&req, 0);
    gw_daemon_request_text(&req, u, method, path, token, body, len);
    if (req.failed) {
        gw__strbuf_release(&req);
        return gw__error_set(err, GW_ENOMEM, "daemon request: out of memory");
    }
    int fd = -1;
    int rc = connect_to(u, timeout_ms, &fd, err);
    if (rc) {
        gw__strbuf_release(&req);
        return rc;
    }
    rc = send_all(fd, req.data, req.len, timeout_ms, u, err);
    gw__strbuf_release(&req);
    size_t cap = 0, got = 0;
    char *buf = NULL;
    while (!rc) {
        if (got == cap) {
            size_t limit = GW_DAEMON_MAX_HEAD + GW_DAEMON_MAX_BODY + 1;
            if (cap >= limit) {
                rc = gw__error_set(err, GW_ERANGE, "daemon %s: response over %zu bytes", u->text,
                                   limit - 1);
                break;
            }
            size_t nc = cap ? cap * 2 : 4096;
            if (nc > limit)
                nc = limit;
            char *nb = realloc(buf, nc);
            if (!nb) {
                rc = gw__error_set(err, GW_ENOMEM, "daemon response: out of memory");
                break;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                rc = wait_fd(fd, POLLIN, timeout_ms, u, "waiting for the response", err);
                continue;
            }
            if (errno == ECONNRESET && got == 0)
                /* GnuTLS resets a plain-HTTP request without a byte of answer. */
                rc = gw__error_set(err, GW_EIO,
                                   "daemon %s: connection reset before any answer (a daemon "
                                   "serving only HTTPS? place and run speak plain HTTP)",
                                   u->text);
            else
                rc = gw__error_set(err, GW_EIO, "daemon %s: recv: %s", u->text, strerror(errno));
            break;
        }
        got += (size_t)n;
        int p = gw_daemon_response_parse(buf, got, n == 0, out, err);
        if (p == 1 && n == 0)
            rc = gw__error_set(err, GW_EPARSE, "daemon %s: connection closed after %zu bytes, "
                                              "before the end of an HTTP response", u->text, got);
        else if (p != 1)
            rc = p == GW_OK ? 1 : p; /* 1: done */
    }
    free(buf);
    close(fd);
    return rc == 1 ? GW_OK : rc;
}

const char *gw_daemon_error_message(const gw_daemon_response *r, char *buf, size_t cap)
{
    /* a small scan for "message":"..." — enough for the daemon's own shape */
    const char *b = r->body ? r->body : "";
    const char *m = strstr(b, "\"message\":");
    if (m) {
        m += 10;
        while (*m == ' ')
            m++;
    }
    size_t k = 0;
    if (m && *m == '"') {
        for (m++; *m && *m != '"' && k + 1 < cap; m++) {
            if (*m == '\\' && m[1])
                m++;
            buf[k++] = *m;
        }
    } else {
        for (; *b && *b != '\n' && k + 1 < cap && k < 200; b++)
            buf[k++] = (unsigned char)*b < 0x20 ? ' ' : *b;
    }
    buf[k] = '\0';
    return buf;
}

/* Checks a stream's response head (head[0..len), up to and including the
 * empty line): "HTTP/1.x 200", a text/event-stream Content-Type, no
 * Transfer-Encoding. GW_EPARSE / GW_EIO naming what is wrong. */
static int check_stream_head(const char *head, size_t len, const gw_daemon_url *u,
                             const char *path, gw_error *err)
{
    int status = 0;
    if (len < 12 || memcmp(head, "HTTP/1.", 7) != 0 || (head[7] != '0' && head[7] != '1') ||
        head[8] != ' ' || sscanf(head + 9, "%3d", &status) != 1)
        return gw__error_set(err, GW_EPARSE, "daemon %s%s: not an HTTP response", u->text, path);
    if (status != 200)
        return gw__error_set(err, GW_EIO, "daemon %s%s: HTTP %d", u->text, path, status);
    bool sse = false;
    for (const char *l = memchr(head, '\n', len); l && l < head + len; l = memchr(l, '\n',
                                                                                 (size_t)(head + len - l))) {
        l++;
        size_t rest = (size_t)(head + len - l);
        if (rest >= 13 && strncasecmp(l, "content-type:", 13) == 0) {
            const char *v = l + 13;
            while (v < head + len && (*v == ' ' || *v == '\t'))
                v++;
            sse = (size_t)(head + len - v) >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
        } else if (rest >= 18 && strncasecmp(l, "transfer-encoding:", 18) == 0) {
            return gw__error_set(err, GW_EPARSE, "daemon %s%s: a Transfer-Encoding on an "
                                                 "HTTP/1.0 stream", u->text, path);
        }
    }
    if (!sse)
        return gw__error_set(err, GW_EPARSE, "daemon %s%s: not a text/event-stream", u->text,
                             path);
    return GW_OK;
}

int gw_daemon_stream_open(const gw_daemon_url *u, const char *path, const char *token,
                          int timeout_ms, int *fd_out, gw_strbuf *early, gw_error *err)
{
    *fd_out = -1;
    gw_strbuf req;
    gw__strbuf_init(&req, 0);
    char authority[sizeof u->host + sizeof u->port + 4];
    gw__strbuf_printf(&req, "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: text/event-stream\r\n",
                      path, gw_daemon_authority(u, authority, sizeof authority));
    if (token && *token)
        gw__strbuf_printf(&req, "Authorization: Bearer %s\r\n", token);
    gw__strbuf_puts(&req, "\r\n");
    if (req.failed) {
        gw__strbuf_release(&req);
        return gw__error_set(err, GW_ENOMEM, "daemon request: out of memory");
    }
    int fd = -1;
    int rc = connect_to(u, timeout_ms, &fd, err);
    if (!rc)
        rc = send_all(fd, req.data, req.len, timeout_ms, u, err);
    gw__strbuf_release(&req);
    char head[GW_DAEMON_MAX_HEAD];
    size_t got = 0;
    const char *end = NULL;
    while (!rc && !end) {
        if (got == sizeof head) {
            rc = gw__error_set(err, GW_ERANGE, "daemon %s%s: response head over %zu bytes",
                               u->text, path, sizeof head);
            break;
        }
        ssize_t n = recv(fd, head + got, sizeof head - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_fd(fd, POLLIN, timeout_ms, u, "waiting for the stream", err);
            continue;
        }
        if (n <= 0) {
            rc = gw__error_set(err, GW_EIO, "daemon %s%s: %s before the response head", u->text,
                               path, n == 0 ? "connection closed" : strerror(errno));
            break;
        }
        size_t from = got > 3 ? got - 3 : 0;
        got += (size_t)n;
        for (size_t i = from; i + 4 <= got && !end; i++)
            if (memcmp(head + i, "\r\n\r\n", 4) == 0)
                end = head + i + 4;
    }
    if (!rc)
        rc = check_stream_head(head, (size_t)(end - head), u, path, err);
    if (rc) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    gw__strbuf_append(early, end, (size_t)(head + got - end));
    *fd_out = fd;
    return GW_OK;
}
