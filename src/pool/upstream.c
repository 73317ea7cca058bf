/* upstream.c — the pool's HTTP/1.1 client to its children (upstream.h says
 * what it owns and its invariants). Sockets are non-blocking; the steps
 * never wait (they answer 1 when the socket has nothing for them), and the
 * blocking calls are the steps with one poll() between them. */
#include "pool/upstream.h"

#include "core/array.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define UP_BUF_FIRST 16384u
#define UP_HEAD_MAX GW_DAEMON_MAX_HEAD

/* A connection to 127.0.0.1:port that failed with errno e. */
static int connect_error(uint32_t port, int e, gw_error *err)
{
    return gw__error_set(err, e == ECONNREFUSED ? GW_ENOENT : GW_EIO,
                         "connecting to 127.0.0.1:%u: %s", port, strerror(e));
}

int gw_upstream_connect_start(uint32_t port, int *fd_out, gw_error *err)
{
    *fd_out = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return gw__error_set(err, GW_EIO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        *fd_out = fd;
        return GW_OK;
    }
    if (errno == EINPROGRESS) {
        *fd_out = fd;
        return 1;
    }
    int e = errno;
    close(fd);
    return connect_error(port, e, err);
}

int gw_upstream_connect_end(int fd, uint32_t port, gw_error *err)
{
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
        e = errno;
    return e ? connect_error(port, e, err) : GW_OK;
}

/* Waits until fd has `events`: GW_OK, or GW_ETIMEDOUT after timeout_ms. */
static int wait_fd(int fd, short events, int timeout_ms, const char *what, gw_error *err)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return gw__error_set(err, GW_EIO, "poll: %s", strerror(errno));
        if (r == 0)
            return gw__error_set(err, GW_ETIMEDOUT, "the model server sent nothing for %d ms "
                                                    "while %s", timeout_ms, what);
        return GW_OK;
    }
}

int gw_upstream_connect(uint32_t port, int timeout_ms, int *fd_out, gw_error *err)
{
    int fd;
    int rc = gw_upstream_connect_start(port, &fd, err);
    if (rc == 1) {
        rc = wait_fd(fd, POLLOUT, timeout_ms, "accepting the connection", err);
        if (rc == GW_ETIMEDOUT)
            rc = gw__error_set(err, GW_ETIMEDOUT, "connecting to 127.0.0.1:%u timed out", port);
        if (rc == GW_OK)
            rc = gw_upstream_connect_end(fd, port, err);
        if (rc != GW_OK)
            close(fd);
    }
    *fd_out = rc == GW_OK ? fd : -1;
    return rc;
}

void gw_upstream_request_head(gw_strbuf *out, const char *method, const char *path,
                              uint32_t port, const char *ctype, const char *accept,
                              bool has_body, size_t body_len)
{
    gw__strbuf_printf(out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n", method, path, port);
    if (ctype && *ctype)
        gw__strbuf_printf(out, "Content-Type: %s\r\n", ctype);
    if (accept && *accept)
        gw__strbuf_printf(out, "Accept: %s\r\n", accept);
    if (has_body)
        gw__strbuf_printf(out, "Content-Length: %zu\r\n", body_len);
    gw__strbuf_puts(out, "\r\n");
}

int gw_upstream_send_some(int fd, const char *head, size_t head_len, const char *body,
                          size_t len, size_t *sent, gw_error *err)
{
    /* head and body in one sendmsg: one segment for a small request */
    size_t total = head_len + (body ? len : 0);
    while (*sent < total) {
        size_t h = *sent < head_len ? *sent : head_len, bdone = *sent - h;
        struct iovec iov[2] = {{(void *)(head + h), head_len - h},
                               {(void *)(body ? body + bdone : ""), body ? len - bdone : 0}};
        struct msghdr msg = {.msg_iov = iov[0].iov_len ? iov : iov + 1,
                             .msg_iovlen = iov[0].iov_len ? 2 : 1};
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (w <= 0)
            return gw__error_set(err, GW_EIO, "sending the request to the model server: %s",
                                 w < 0 ? strerror(errno) : "connection closed");
        *sent += (size_t)w;
    }
    return GW_OK;
}

int gw_upstream_send(int fd, const char *head, size_t head_len, const char *body, size_t len,
                     int timeout_ms, gw_error *err)
{
    size_t sent = 0;
    int rc;
    while ((rc = gw_upstream_send_some(fd, head, head_len, body, len, &sent, err)) == 1)
        if ((rc = wait_fd(fd, POLLOUT, timeout_ms, "taking the request", err)) != GW_OK)
            return rc;
    return rc;
}

/* Reads what the socket has into a->buf: GW_OK with at least one more
 * byte or *eof; 1 when nothing is there yet; GW_EIO, GW_ENOMEM. */
static int fill(gw_upstream_answer *a, bool *eof, gw_error *err)
{
    *eof = false;
    if (a->off == a->len)
        a->off = a->len = 0;
    if (a->len == a->cap) {
        if (a->off > 0) {
            memmove(a->buf, a->buf + a->off, a->len - a->off);
            a->len -= a->off;
            a->off = 0;
        } else if (GW__ARRAY_RESERVE(a->buf, a->cap, a->cap ? a->cap + 1 : UP_BUF_FIRST,
                                     UP_HEAD_MAX * 4) != GW_OK) {
            return gw__error_set(err, GW_ENOMEM, "answer buffer: out of memory or over %u bytes",
                                 UP_HEAD_MAX * 4);
        }
    }
    for (;;) {
        ssize_t r = recv(a->fd, a->buf + a->len, a->cap - a->len, 0);
        if (r > 0) {
            a->len += (size_t)r;
            a->received += (uint64_t)r;
            return GW_OK;
        }
        if (r == 0) {
            *eof = true;
            return GW_OK;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 1;
        return gw__error_set(err, GW_EIO, "reading from the model server: %s", strerror(errno));
    }
}

static void set_framing(gw_upstream_answer *a)
{
    const gw_http_head *h = &a->head;
    if (h->status == 204 || h->status == 304 || (h->has_length && h->length == 0)) {
        a->framing = GW_UP_NONE;
        a->done = true;
    } else if (h->chunked) {
        a->framing = GW_UP_CHUNKED;
        gw_chunked_init(&a->chunked);
    } else if (h->has_length) {
        a->framing = GW_UP_LENGTH;
        a->left = h->length;
    } else {
        a->framing = GW_UP_CLOSE;
    }
}

void gw_upstream_answer_begin(gw_upstream_answer *a, int fd)
{
    memset(a, 0, sizeof *a);
    a->fd = fd;
}

int gw_upstream_head_step(gw_upstream_answer *a, gw_error *err)
{
    for (;;) {
        bool eof;
        int rc = fill(a, &eof, err);
        if (rc != GW_OK)
            return rc;
        if (eof)
            return gw__error_set(err, GW_EIO, a->len ? "the model server closed the connection "
                                                       "inside an answer's head"
                                                     : "the model server closed the connection "
                                                       "without answering");
        rc = gw_http_head_parse(a->buf, a->len, &a->head, err);
        if (rc == 1)
            continue;
        if (rc != GW_OK)
            return rc;
        if (a->head.status < 200)
            return gw__error_set(err, GW_EPARSE, "the model server answered %d (an interim "
                                                 "answer the pool does not pass on)",
                                 a->head.status);
        size_t n = a->head.ctype_len < sizeof a->ctype ? a->head.ctype_len : sizeof a->ctype - 1;
        memcpy(a->ctype, a->buf + a->head.ctype_off, n);
        a->ctype[n] = '\0';
        a->off = a->head.head_len;
        set_framing(a);
        return GW_OK;
    }
}

int gw_upstream_read_head(gw_upstream_answer *a, int fd, int timeout_ms, gw_error *err)
{
    gw_upstream_answer_begin(a, fd);
    int rc;
    /* the answer cannot be there yet: wait first instead of a recv that
     * would only say EAGAIN */
    while ((rc = wait_fd(fd, POLLIN, timeout_ms, "preparing its answer", err)) == GW_OK &&
           (rc = gw_upstream_head_step(a, err)) == 1)
        ;
    return rc;
}

/* Delivers buffered body bytes per the framing; *n 0 when none buffered. */
static int deliver(gw_upstream_answer *a, char *out, size_t cap, size_t *n, gw_error *err)
{
    size_t avail = a->len - a->off;
    *n = 0;
    if (a->framing == GW_UP_CHUNKED) {
        while (avail && !*n && !a->done) {
            size_t used, dlen;
            const char *data;
            size_t feed = avail < cap ? avail : cap;
            int rc = gw_chunked_next(&a->chunked, a->buf + a->off, feed, &used, &data, &dlen, err);
            assert(gw_chunked_check(&a->chunked));
            if (rc < 0)
                return rc;
            memcpy(out, data, dlen);
            *n = dlen;
            a->off += used;
            avail -= used;
            a->done = rc == 1;
        }
    } else {
        size_t take = avail < cap ? avail : cap;
        if (a->framing == GW_UP_LENGTH && take > a->left)
            take = (size_t)a->left;
        memcpy(out, a->buf + a->off, take);
        a->off += take;
        *n = take;
        if (a->framing == GW_UP_LENGTH) {
            a->left -= take;
            a->done = a->left == 0;
        }
    }
    if (a->done && a->off < a->len)
        a->extra = true;
    return GW_OK;
}

int gw_upstream_body_step(gw_upstream_answer *a, char *out, size_t cap, size_t *n,
                          gw_error *err)
{
    *n = 0;
    while (!a->done) {
        int rc = deliver(a, out, cap, n, err);
        if (rc != GW_OK || *n > 0 || a->done)
            return rc;
        bool eof;
        rc = fill(a, &eof, err);
        if (rc != GW_OK)
            return rc;
        if (eof) {
            if (a->framing == GW_UP_CLOSE) {
                a->done = true;
                return GW_OK;
            }
            return gw__error_set(err, GW_EIO, "the model server closed the connection "
                                              "mid-answer (after %llu bytes)",
                                 (unsigned long long)a->received);
        }
    }
    return GW_OK;
}

bool gw_upstream_reusable(const gw_upstream_answer *a)
{
    return a->done && !a->head.close && !a->extra && a->framing != GW_UP_CLOSE &&
           a->off == a->len;
}

void gw_upstream_answer_release(gw_upstream_answer *a)
{
    free(a->buf);
    a->buf = NULL;
    a->len = a->off = a->cap = 0;
}
