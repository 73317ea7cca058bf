/* plain_http.c — see plain_http.h: the literal-address URL, the HTTP/1.0
 * request, and a connect / send / receive state machine on one
 * non-blocking socket. The answer is framed by place/daemon_client.h's head
 * parser and body framing (the one grammar for responses here). */
#include "fleet/plain_http.h"
#include "core/parse.h"
#include "place/daemon_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct target {
    struct sockaddr_storage sa;
    socklen_t sa_len;
    char authority[72]; /* HOST[:PORT] as the URL writes it: the Host header */
    const char *path;   /* "/..." inside the URL, or "" for "/" */
} target;

/* Parses url as plain_http.h's gw__plain_http_handles describes. */
static bool parse_target(const char *url, target *t)
{
    memset(t, 0, sizeof *t);
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *h = url + 7, *after;
    char host[48];
    size_t hl;
    bool v6 = *h == '[';
    if (v6) {
        const char *close = strchr(h, ']');
        if (!close)
            return false;
        hl = (size_t)(close - h - 1);
        after = close + 1;
        if (hl == 0 || hl >= sizeof host)
            return false;
        memcpy(host, h + 1, hl);
    } else {
        hl = strcspn(h, ":/?#");
        after = h + hl;
        if (hl == 0 || hl >= sizeof host)
            return false;
        memcpy(host, h, hl);
    }
    host[hl] = '\0';
    uint64_t port = 80;
    if (*after == ':') {
        char digits[8];
        size_t dl = strcspn(after + 1, "/?#");
        gw_error why;
        if (dl == 0 || dl >= sizeof digits)
            return false;
        memcpy(digits, after + 1, dl);
        digits[dl] = '\0';
        if (gw__parse_uint(digits, 1, 65535, &port, &why) != GW_OK)
            return false;
        after += 1 + dl;
    }
    if (*after && *after != '/')
        return false;
    size_t al = (size_t)(after - h);
    if (al >= sizeof t->authority)
        return false;
    memcpy(t->authority, h, al);
    t->authority[al] = '\0';
    t->path = after;
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->sa;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        t->sa_len = sizeof *in6;
        return inet_pton(AF_INET6, host, &in6->sin6_addr) == 1;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)&t->sa;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    t->sa_len = sizeof *in;
    return inet_pton(AF_INET, host, &in->sin_addr) == 1;
}

bool gw__plain_http_handles(const char *url)
{
    target t;
    return url && parse_target(url, &t);
}

/* Ends the transfer with an error (invariant 2). Returns true (ended);
 * gw__plain_http_start, whose true means "running", returns !fail(). */
static bool fail(gw__plain_http *p, gw__fetch *v, int rc, const char *fmt, ...) GW__PRINTF(4, 5);
static bool fail(gw__plain_http *p, gw__fetch *v, int rc, const char *fmt, ...)
{
    gw__plain_http_close(p);
    v->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->error, sizeof v->error, fmt, ap);
    va_end(ap);
    return true;
}

void gw__plain_http_close(gw__plain_http *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    gw__strbuf_release(&p->req);
}

bool gw__plain_http_start(gw__plain_http *p, gw__fetch *v, size_t max_body)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->max_body = max_body;
    gw__strbuf_init(&p->req, 0);
    gw__strbuf_init(&v->body, GW_DAEMON_MAX_HEAD + max_body);
    target t;
    if (!parse_target(v->url, &t))
        return !fail(p, v, GW_EINVAL, "not an http:// URL with an IP address: %s", v->url);
    gw_strbuf *r = &p->req;
    gw__strbuf_printf(r, "%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: gpuwatch/" GW_VERSION_STRING
                         "\r\nAccept: application/json\r\n",
                      v->post ? "POST" : "GET", *t.path ? t.path : "/", t.authority);
    if (v->token && *v->token)
        gw__strbuf_printf(r, "Authorization: Bearer %s\r\n", v->token);
    if (v->post)
        gw__strbuf_printf(r, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                          v->content_type ? v->content_type : "application/json", strlen(v->post));
    gw__strbuf_puts(r, "\r\n");
    if (v->post)
        gw__strbuf_puts(r, v->post);
    if (r->failed)
        return !fail(p, v, GW_ENOMEM, "out of memory");
    p->fd = socket(t.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        return !fail(p, v, GW_EIO, "socket: %s", strerror(errno));
    if (connect(p->fd, (struct sockaddr *)&t.sa, t.sa_len) == 0)
        p->connected = true;
    else if (errno != EINPROGRESS)
        return !fail(p, v, errno == ECONNREFUSED ? GW_ENOENT : GW_EIO, "connect: %s",
                     strerror(errno));
    return true; /* running */
}

short gw__plain_http_events(const gw__plain_http *p)
{
    return !p->connected || p->sent < p->req.len ? POLLOUT : POLLIN;
}

/* Tries to complete the answer in v->body (eof: the server has closed).
 * Returns true when it ended (answered or failed), false to read more. */
static bool try_finish(gw__plain_http *p, gw__fetch *v, bool eof)
{
    gw_http_head h;
    gw_error why;
    gw_error_clear(&why);
    int rc = gw_http_head_parse(v->body.data ? v->body.data : "", v->body.len, &h, &why);
    size_t body_len = 0;
    if (rc == GW_OK)
        rc = gw_http_body_frame(v->body.len, &h, eof, p->max_body, &body_len, &why);
    if (rc == 1 && !eof)
        return false;
    if (rc == 1) /* eof inside the head */
        return fail(p, v, GW_EIO, "connection closed before the end of the HTTP head");
    if (rc == GW_ERANGE && h.head_len)
        return fail(p, v, GW_ERANGE, "answer longer than %zu bytes", p->max_body);
    if (rc != GW_OK)
        return fail(p, v, rc, "%s", why.message);
    gw__plain_http_close(p);
    memmove(v->body.data, v->body.data + h.head_len, body_len);
    v->body.len = body_len;
    v->body.data[body_len] = '\0';
    v->status = h.status;
    v->rc = GW_OK;
    return true;
}

/* Reads what has arrived. Returns true when the transfer ended. */
static bool receive(gw__plain_http *p, gw__fetch *v)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(p->fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return try_finish(p, v, false);
        if (n < 0)
            return errno == ECONNRESET ? fail(p, v, GW_EIO, "connection reset by the peer")
                                       : fail(p, v, GW_EIO, "recv: %s", strerror(errno));
        if (n == 0)
            return try_finish(p, v, true);
        gw__strbuf_append(&v->body, chunk, (size_t)n);
        if (v->body.failed)
            return v->body.len + (size_t)n >= v->body.max /* the NUL needs a byte */
                       ? fail(p, v, GW_ERANGE, "answer longer than %zu bytes", p->max_body)
                       : fail(p, v, GW_ENOMEM, "out of memory");
    }
}

bool gw__plain_http_step(gw__plain_http *p, gw__fetch *v, short revents)
{
    if (p->fd < 0)
        return true;
    if (!p->connected) {
        int e = 0;
        socklen_t sl = sizeof e;
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
            e = errno;
        if (e == EINPROGRESS || (!e && !(revents & (POLLOUT | POLLERR | POLLHUP))))
            return false;
        if (e)
            return fail(p, v, e == ECONNREFUSED ? GW_ENOENT : GW_EIO, "connect: %s", strerror(e));
        p->connected = true;
    }
    while (p->sent < p->req.len) {
        ssize_t n = send(p->fd, p->req.data + p->sent, p->req.len - p->sent, MSG_NOSIGNAL);
        if (n > 0)
            p->sent += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        else if (n < 0 && errno != EINTR)
            return fail(p, v, GW_EIO, "send: %s", strerror(errno));
    }
    return receive(p, v);
}
