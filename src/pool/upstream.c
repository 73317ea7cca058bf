/* upstream.c — the pool's HTTP/1.1 client to its children (upstream.h says
 * what it owns and its invariants). Sockets are non-blocking; every wait is
 * one poll() over the child's socket and the client's. */
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

int gw_upstream_connect(uint32_t port, int timeout_ms, int *fd_out, gw_error *err)
{
    *fd_out = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return gw__error_set(err, GW_EIO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        if (e == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int r;
            while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
                ;
            socklen_t len = sizeof e;
            if (r == 0) {
                close(fd);
                return gw__error_set(err, GW_ETIMEDOUT, "connecting to 127.0.0.1:%u timed out",
                                     port);
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
                e = errno;
        }
        if (e) {
            close(fd);
            return gw__error_set(err, e == ECONNREFUSED ? GW_ENOENT : GW_EIO,
                                 "connecting to 127.0.0.1:%u: %s", port, strerror(e));
        }
    }
    *fd_out = fd;
    return GW_OK;
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

/* Waits until fd has `events` or the watched client goes; returns GW_OK,
 * GW_ETIMEDOUT, or GW_EIO with client_gone. */
static int wait_child(int fd, short events, int watch_fd, int timeout_ms, bool *client_gone,
                      const char *what, gw_error *err)
{
    struct pollfd p[2] = {{.fd = fd, .events = events},
                          {.fd = watch_fd, .events = POLLRDHUP}};
    int n = watch_fd >= 0 ? 2 : 1;
    for (;;) {
        int r = poll(p, (nfds_t)n, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return gw__error_set(err, GW_EIO, "poll: %s", strerror(errno));
        if (r == 0)
            return gw__error_set(err, GW_ETIMEDOUT, "the model server sent nothing for %d ms "
                                                    "while %s", timeout_ms, what);
        if (n == 2 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
            *client_gone = true;
            return gw__error_set(err, GW_EIO, "the client disconnected");
        }
        if (p[0].revents)
            return GW_OK;
    }
}

int gw_upstream_send(int fd, const char *head, size_t head_len, const char *body, size_t len,
                     int timeout_ms, gw_error *err)
{
    /* head and body in one sendmsg: one segment for a small request */
    struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, body ? len : 0}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    bool gone = false;
    while (iov[0].iov_len || iov[1].iov_len) {
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_child(fd, POLLOUT, -1, timeout_ms, &gone, "taking the request", err);
            if (rc != GW_OK)
                return rc;
            continue;
        }
        if (w <= 0)
            return gw__error_set(err, GW_EIO, "sending the request to the model server: %s",
                                 w < 0 ? strerror(errno) : "connection closed");
        size_t done = (size_t)w;
        for (int k = 0; k < 2; k++) {
            size_t take = done < iov[k].iov_len ? done : iov[k].iov_len;
            iov[k].iov_base = (char *)iov[k].iov_base + take;
            iov[k].iov_len -= take;
            done -= take;
        }
        msg.msg_iov = iov[0].iov_len ? iov : iov + 1;
        msg.msg_iovlen = iov[0].iov_len ? 2 : 1;
    }
    return GW_OK;
}

/* Reads more bytes into a->buf; GW_OK with at least one, GW_EIO "closed"
 * (a->len unchanged) at end of stream, other errors as wait_child. */
static int fill(gw_upstream_answer *a, bool *eof, const char *what, gw_error *err)
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
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return gw__error_set(err, GW_EIO, "reading from the model server: %s",
                                 strerror(errno));
        int rc = wait_child(a->fd, POLLIN, a->watch_fd, a->timeout_ms, &a->client_gone, what,
                            err);
        if (rc != GW_OK)
            return rc;
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

int gw_upstream_read_head(gw_upstream_answer *a, int fd, int watch_fd, int timeout_ms,
                          gw_error *err)
{
    memset(a, 0, sizeof *a);
    a->fd = fd;
    a->watch_fd = watch_fd;
    a->timeout_ms = timeout_ms;
    /* the answer cannot be there yet: wait first instead of a recv that
     * would only say EAGAIN */
    int rc0 = wait_child(fd, POLLIN, watch_fd, timeout_ms, &a->client_gone,
                         "preparing its answer", err);
    if (rc0 != GW_OK)
        return rc0;
    for (;;) {
        bool eof;
        int rc = fill(a, &eof, "preparing its answer", err);
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

int gw_upstream_read_body(gw_upstream_answer *a, char *out, size_t cap, size_t *n,
                          gw_error *err)
{
    *n = 0;
    while (!a->done) {
        int rc = deliver(a, out, cap, n, err);
        if (rc != GW_OK || *n > 0 || a->done)
            return rc;
        bool eof;
        rc = fill(a, &eof, "answering", err);
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
