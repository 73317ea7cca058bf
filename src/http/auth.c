/* auth.c — see auth.h. Owns the basic-auth file parser, the verification
 * cache and the Authorization header parser; SHA-256 (FIPS 180-4) is here
 * only to key that cache. */
#include "http/auth.h"
#include "core/util.h"

#include <assert.h>
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- SHA-256 */

typedef struct sha256 {
    uint32_t h[8];
    uint64_t bytes;
    unsigned char blk[64];
    size_t n;
} sha256;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256 *c, const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5],
             g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = cc;
        cc = b;
        b = a;
        a = t1 + t2;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
    c->h[5] += f;
    c->h[6] += g;
    c->h[7] += h;
}

static void sha256_init(sha256 *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->bytes = 0;
    c->n = 0;
}

static void sha256_update(sha256 *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    c->bytes += len;
    while (len) {
        size_t k = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->blk + c->n, p, k);
        c->n += k;
        p += k;
        len -= k;
        if (c->n == 64) {
            sha256_block(c, c->blk);
            c->n = 0;
        }
    }
}

static void sha256_final(sha256 *c, unsigned char out[32])
{
    uint64_t bits = c->bytes * 8;
    unsigned char pad = 0x80;
    sha256_update(c, &pad, 1);
    pad = 0;
    while (c->n != 56)
        sha256_update(c, &pad, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(c, len, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }
}

/* -------------------------------------------------------------- helpers */

bool gw__ct_equal(const char *secret, size_t secret_len, const char *given, size_t given_len)
{
    unsigned char diff = (unsigned char)(secret_len != given_len);
    for (size_t i = 0; i < secret_len; i++)
        diff |= (unsigned char)(secret[i] ^ (i < given_len ? given[i] : 0));
    return diff == 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict RFC 4648 base64 (padding required) into out[cap]; returns the
 * decoded length or -1. */
static long b64_decode(const char *s, size_t n, char *out, size_t cap)
{
    if (n == 0 || n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad)
                return -1; /* data after padding */
            v[k] = b64_value(c);
            if (v[k] < 0)
                return -1;
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t emit = 3u - (size_t)pad;
        if (o + emit > cap)
            return -1;
        out[o++] = (char)(x >> 16);
        if (emit > 1)
            out[o++] = (char)(x >> 8);
        if (emit > 2)
            out[o++] = (char)x;
    }
    return (long)o;
}

gw__authz_scheme gw__authz_parse(const char *h, char *buf, size_t cap, const char **user,
                                 size_t *user_len, const char **cred, size_t *cred_len)
{
    *user = *cred = NULL;
    *user_len = *cred_len = 0;
    if (!h)
        return GW__AUTHZ_NONE;
    while (*h == ' ')
        h++;
    const char *sp = strchr(h, ' ');
    if (!sp)
        return GW__AUTHZ_OTHER;
    size_t scheme = (size_t)(sp - h);
    const char *v = sp;
    while (*v == ' ')
        v++;
    size_t n = strlen(v);
    while (n && v[n - 1] == ' ')
        n--;
    if (scheme == 6 && strncasecmp(h, "Bearer", 6) == 0 && n) {
        *cred = v;
        *cred_len = n;
        return GW__AUTHZ_BEARER;
    }
    if (scheme != 5 || strncasecmp(h, "Basic", 5) != 0 || cap < 2)
        return GW__AUTHZ_OTHER;
    long m = b64_decode(v, n, buf, cap - 1);
    if (m < 0)
        return GW__AUTHZ_OTHER;
    char *colon = memchr(buf, ':', (size_t)m);
    if (!colon)
        return GW__AUTHZ_OTHER;
    /* "user:password" becomes "user\0password\0" in place */
    size_t ulen = (size_t)(colon - buf), plen = (size_t)m - ulen - 1;
    *colon = '\0';
    buf[m] = '\0';
    *user = buf;
    *user_len = ulen;
    *cred = colon + 1;
    *cred_len = plen;
    return GW__AUTHZ_BASIC;
}

/* ------------------------------------------------------------ the file */

typedef struct entry {
    char *user;
    char *hash;
    bool cached;              /* digest holds a verified password's digest */
    unsigned char digest[32]; /* SHA-256(key || password) */
} entry;

struct gw__basic_auth {
    entry *e;
    size_t n;
    unsigned char key[32]; /* random per object: cache digests are not portable */
    pthread_mutex_t lock;  /* e[].cached, e[].digest */
};

/* The methods accepted: a prefix and the length of the complete hash
 * (bcrypt) or of its last '$'-separated field, the checksum (the others).
 * crypt_checksalt alone accepts a bare setting such as "$6$", which no
 * password would ever match. */
static bool hash_supported(const char *h)
{
    static const struct {
        const char *prefix;
        size_t total, checksum; /* 0: not checked */
    } ok[] = {
        {"$2a$", 60, 0}, {"$2b$", 60, 0}, {"$2y$", 60, 0},
        {"$y$", 0, 43},  {"$5$", 0, 43},  {"$6$", 0, 86},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(ok); i++) {
        if (strncmp(h, ok[i].prefix, strlen(ok[i].prefix)) != 0)
            continue;
        const char *last = strrchr(h, '$');
        if ((ok[i].total && strlen(h) != ok[i].total) ||
            (ok[i].checksum && strlen(last + 1) != ok[i].checksum))
            return false;
        return crypt_checksalt(h) == CRYPT_SALT_OK;
    }
    return false;
}

static int bad_line(gw_error *err, const char *path, unsigned line, const char *user,
                    const char *hash)
{
    const char *what = hash[0] != '$'          ? "is not a crypt(3) hash (plaintext passwords are refused)"
                       : strncmp(hash, "$1$", 3) == 0 || strncmp(hash, "$apr1$", 6) == 0
                           ? "is an MD5 hash (too weak; `htpasswd -m` writes these)"
                           : "is not a supported or well-formed crypt(3) hash";
    return gw__error_set(err, GW_EINVAL,
                         "%s:%u: user '%.64s': the password %s; use bcrypt, yescrypt or SHA-crypt "
                         "(htpasswd -nB USER, mkpasswd -m bcrypt, openssl passwd -6)",
                         path, line, user, what);
}

void gw__basic_auth_free(gw__basic_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->e[i].user);
        free(a->e[i].hash);
    }
    free(a->e);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* Adds one "user:hash" line (already trimmed, NUL-terminated in place). */
static int add_line(gw__basic_auth *a, char *s, const char *path, unsigned no, gw_error *err)
{
    char *colon = strchr(s, ':');
    if (!colon)
        return gw__error_set(err, GW_EINVAL, "%s:%u: expected 'user:hash'", path, no);
    *colon = '\0';
    const char *user = s, *hash = colon + 1;
    if (!*user)
        return gw__error_set(err, GW_EINVAL, "%s:%u: empty user name", path, no);
    for (const char *p = user; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return gw__error_set(err, GW_EINVAL, "%s:%u: control character in the user name", path, no);
    if (!hash_supported(hash))
        return bad_line(err, path, no, user, hash);
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->e[i].user, user) == 0)
            return gw__error_set(err, GW_EINVAL, "%s:%u: user '%.64s' is listed twice", path, no, user);
    if (a->n == GW__BASIC_AUTH_MAX_USERS)
        return gw__error_set(err, GW_EINVAL, "%s:%u: more than %u users", path, no,
                             GW__BASIC_AUTH_MAX_USERS);
    if ((a->n & (a->n - 1)) == 0) { /* grow at 0, 1, 2, 4, ...: the count is capped above */
        entry *e = realloc(a->e, (a->n ? 2 * a->n : 1) * sizeof *e);
        if (!e)
            return gw__error_set(err, GW_ENOMEM, "%s: out of memory", path);
        a->e = e;
    }
    entry *e = &a->e[a->n];
    memset(e, 0, sizeof *e);
    e->user = strdup(user);
    e->hash = strdup(hash);
    if (!e->user || !e->hash) {
        free(e->user);
        free(e->hash);
        return gw__error_set(err, GW_ENOMEM, "%s: out of memory", path);
    }
    a->n++;
    return GW_OK;
}

int gw__basic_auth_parse(const char *text, size_t len, const char *path, gw__basic_auth **out,
                         gw_error *err)
{
    *out = NULL;
    if (len > GW__BASIC_AUTH_MAX_FILE)
        return gw__error_set(err, GW_EINVAL, "%s: larger than %u bytes", path, GW__BASIC_AUTH_MAX_FILE);
    gw__basic_auth *a = calloc(1, sizeof *a);
    char *copy = malloc(len + 1);
    if (!a || !copy) {
        free(a);
        free(copy);
        return gw__error_set(err, GW_ENOMEM, "%s: out of memory", path);
    }
    pthread_mutex_init(&a->lock, NULL);
    memcpy(copy, text, len);
    copy[len] = '\0';
    int rc = GW_OK;
    unsigned no = 0;
    for (char *line = copy, *next; rc == GW_OK && line && (line < copy + len); line = next) {
        no++;
        char *nl = memchr(line, '\n', (size_t)(copy + len - line));
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        if (memchr(line, '\0', (size_t)((nl ? nl : copy + len) - line))) {
            rc = gw__error_set(err, GW_EINVAL, "%s:%u: NUL byte in the line", path, no);
            break;
        }
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        rc = add_line(a, line, path, no, err);
    }
    free(copy);
    if (rc == GW_OK && a->n == 0)
        rc = gw__error_set(err, GW_EINVAL, "%s: no 'user:hash' line", path);
    if (rc == GW_OK && getrandom(a->key, sizeof a->key, 0) != (ssize_t)sizeof a->key)
        rc = gw__error_set(err, GW_EIO, "%s: no random bytes for the cache key: %s", path,
                           strerror(errno));
    if (rc != GW_OK) {
        gw__basic_auth_free(a);
        return rc;
    }
    assert(gw__basic_auth_check(a));
    *out = a;
    return GW_OK;
}

int gw__basic_auth_load(const char *path, gw__basic_auth **out, gw_error *err)
{
    *out = NULL;
    char *text;
    size_t len;
    int rc = gw__read_secret_file("basic_auth_file", path, GW__BASIC_AUTH_MAX_FILE, &text, &len, err);
    if (rc != GW_OK)
        return rc;
    rc = gw__basic_auth_parse(text, len, path, out, err);
    free(text);
    return rc;
}

size_t gw__basic_auth_count(const gw__basic_auth *a) { return a ? a->n : 0; }

bool gw__basic_auth_check(const gw__basic_auth *a)
{
    if (!a || (a->n && !a->e))
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!a->e[i].user || !a->e[i].user[0] || strchr(a->e[i].user, ':') || !a->e[i].hash ||
            a->e[i].hash[0] != '$')
            return false;
    return true;
}

static void digest_of(const gw__basic_auth *a, const char *pw, size_t n, unsigned char out[32])
{
    sha256 c;
    sha256_init(&c);
    sha256_update(&c, a->key, sizeof a->key);
    sha256_update(&c, pw, n);
    sha256_final(&c, out);
}

/* crypt_r of pw (NUL-terminated) against hash; constant-time compare. */
static bool crypt_matches(const char *hash, const char *pw)
{
    struct crypt_data *cd = calloc(1, sizeof *cd); /* ~32 KiB: not on a worker's stack */
    if (!cd)
        return false;
    const char *got = crypt_r(pw, hash, cd);
    bool ok = got && got[0] != '*' && gw__ct_equal(hash, strlen(hash), got, strlen(got));
    free(cd);
    return ok;
}

bool gw__basic_auth_verify(gw__basic_auth *a, const char *user, size_t user_len,
                           const char *password, size_t password_len)
{
    if (!a || !a->n || memchr(password, '\0', password_len))
        return false;
    size_t k = a->n; /* the user's entry, or n: unknown */
    for (size_t i = 0; i < a->n; i++)
        if (strlen(a->e[i].user) == user_len && memcmp(a->e[i].user, user, user_len) == 0)
            k = i;
    unsigned char d[32];
    digest_of(a, password, password_len, d);
    if (k < a->n) {
        pthread_mutex_lock(&a->lock);
        bool hit = a->e[k].cached &&
                   gw__ct_equal((const char *)a->e[k].digest, 32, (const char *)d, 32);
        pthread_mutex_unlock(&a->lock);
        if (hit)
            return true;
    }
    char *pw = malloc(password_len + 1);
    if (!pw)
        return false;
    memcpy(pw, password, password_len);
    pw[password_len] = '\0';
    /* an unknown user costs a crypt_r too (against the first hash) */
    bool ok = crypt_matches(a->e[k < a->n ? k : 0].hash, pw) && k < a->n;
    explicit_bzero(pw, password_len);
    free(pw);
    if (ok) {
        pthread_mutex_lock(&a->lock);
        memcpy(a->e[k].digest, d, sizeof d);
        a->e[k].cached = true;
        pthread_mutex_unlock(&a->lock);
    }
    return ok;
}

/* ------------------------------------------------------ credential files */

int gw__read_secret_file(const char *key, const char *path, size_t max, char **out, size_t *len,
                         gw_error *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return gw__error_set(err, errno == ENOENT ? GW_ENOENT : GW_EIO, "%s %s: %s", key, path,
                             errno == ENOENT ? "no such file" : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return gw__error_set(err, GW_EIO, "%s %s: not a regular file", key, path);
    }
    char *buf = malloc(max + 1);
    if (!buf) {
        close(fd);
        return gw__error_set(err, GW_ENOMEM, "%s %s: out of memory", key, path);
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return gw__error_set(err, GW_EIO, "%s %s: cannot read: %s", key, path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            close(fd);
            free(buf);
            return gw__error_set(err, GW_EINVAL, "%s %s: larger than %zu bytes", key, path, max);
        }
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return GW_OK;
}
