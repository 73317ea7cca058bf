/* auth.h — credentials of `gpuwatch serve`: the bearer token and the HTTP
 * basic-auth file, and the Authorization header that carries either.
 *
 * Owns: parsing and checking basic_auth_file ("user:HASH" lines, HASH a
 * crypt(3) hash: bcrypt $2a$/$2b$/$2y$, yescrypt $y$, SHA-crypt $5$/$6$ —
 * what `htpasswd -B`, `mkpasswd -m bcrypt|yescrypt|sha-512` and `openssl
 * passwd -5|-6` write), verifying a user's password with crypt_r, a cache
 * of successful verifications, and constant-time comparison of secrets.
 *
 * Why a cache: a bcrypt verification costs tens of milliseconds of CPU on
 * purpose; Prometheus scraping every second with basic auth would spend
 * that on every scrape. A successful (user, password) pair is remembered as
 * SHA-256(per-process random key || password) in the user's slot, so the
 * next request with the same password costs one SHA-256 and a
 * constant-time compare, and the password itself is never kept. A failed
 * verification is not cached (it costs a full crypt_r every time). A
 * reload builds a new gw__basic_auth: the cache starts empty.
 *
 * Invariants (gw__basic_auth_check):
 *  1. Every entry has a non-empty user without ':' and a hash that
 *     crypt_checksalt accepts and whose method is in the list above; no two
 *     entries share a user.
 *  2. A user's cache slot holds a digest only of a password that crypt_r
 *     verified against that user's hash in this object.
 *  3. The object is immutable after parsing except for the cache, which is
 *     read and written under its own mutex (any thread may verify).
 */
#ifndef GW_HTTP_AUTH_H
#define GW_HTTP_AUTH_H

#include "core/model.h"

#include <stdbool.h>
#include <stddef.h>

#define GW__BASIC_AUTH_MAX_FILE (1u << 20) /* bytes */
#define GW__BASIC_AUTH_MAX_USERS 1024u

typedef struct gw__basic_auth gw__basic_auth;

/* Parses a basic-auth file held in text[len] (need not be NUL-terminated);
 * `path` names it in messages. Blank lines and lines starting with '#' are
 * skipped; trailing '\r' is ignored. On success *out is a new object the
 * caller frees with gw__basic_auth_free. GW_EINVAL, with "PATH:LINE: ..."
 * naming what is wrong (no ':', empty user, duplicate user, plaintext or
 * unsupported hash with the way out), for any bad line: nothing is
 * accepted from a file with one; GW_ENOMEM. *out is NULL on failure. */
int gw__basic_auth_parse(const char *text, size_t len, const char *path, gw__basic_auth **out,
                         gw_error *err);

/* Reads path (at most GW__BASIC_AUTH_MAX_FILE bytes) and parses it.
 * Errors as _parse, plus GW_ENOENT / GW_EIO naming the file and why. */
int gw__basic_auth_load(const char *path, gw__basic_auth **out, gw_error *err);

/* NULL is a no-op. No verification may be in flight. */
void gw__basic_auth_free(gw__basic_auth *a);

size_t gw__basic_auth_count(const gw__basic_auth *a);

/* True when user is listed and password matches its hash. Thread-safe.
 * Takes about the same time for an unknown user as for a wrong password
 * (a crypt_r against a listed hash), so it does not reveal which users
 * exist. */
bool gw__basic_auth_verify(gw__basic_auth *a, const char *user, size_t user_len,
                           const char *password, size_t password_len);

/* Invariant 1 (cheap; for assert()). */
bool gw__basic_auth_check(const gw__basic_auth *a);

/* a[0..alen) == b[0..blen) in time depending only on alen (the secret's). */
bool gw__ct_equal(const char *secret, size_t secret_len, const char *given, size_t given_len);

/* Reads a credential file named by config key `key` (a regular file of at
 * most max bytes) into a new NUL-terminated *out (caller frees), length in
 * *len. GW_ENOENT "KEY PATH: no such file", GW_EIO "... cannot read: WHY" /
 * "not a regular file", GW_EINVAL "... larger than N bytes", GW_ENOMEM;
 * *out NULL on failure. Shared with the TLS files (server.c). */
int gw__read_secret_file(const char *key, const char *path, size_t max, char **out, size_t *len,
                         gw_error *err);

typedef enum gw__authz_scheme {
    GW__AUTHZ_NONE,   /* no header */
    GW__AUTHZ_BEARER, /* *cred = the token */
    GW__AUTHZ_BASIC,  /* *user, *cred = decoded user and password */
    GW__AUTHZ_OTHER,  /* another scheme, or a malformed value */
} gw__authz_scheme;

/* Parses an Authorization header value (NULL: none). The scheme name is
 * case-insensitive. For Basic the base64 is decoded into buf[cap] (user,
 * NUL, password, NUL) and *user / *cred point into it; a value that is not
 * strict base64, too long for buf, or lacks ':' is GW__AUTHZ_OTHER. For
 * Bearer *cred points into header. Lengths in *user_len / *cred_len. */
gw__authz_scheme gw__authz_parse(const char *header, char *buf, size_t cap, const char **user,
                                 size_t *user_len, const char **cred, size_t *cred_len);

#endif
