/* door_test.c — unit tests of what stands at the daemon's door: the route
 * matcher (every route, methods, and garbage paths), the request counter's
 * code buckets, the Authorization header parser, and the basic-auth file
 * parser and verifier (hashes made here with libcrypt, so the expectations
 * do not come from the code under test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/util.h"
#include "http/auth.h"
#include "http/routes.h"
#include "http/tls.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static gw__match_result match(const char *method, const char *path, gw__route *r, gw__op *op,
                              char *id, size_t cap)
{
    const char *v;
    size_t n;
    gw__match_result m = gw__route_match(method, path, r, op, &v, &n);
    id[0] = '\0';
    if (v) {
        assert_true(n < cap);
        memcpy(id, v, n);
        id[n] = '\0';
    }
    return m;
}

static void test_routes_table(void **state)
{
    (void)state;
    assert_true(gw__routes_check());
    static const struct {
        const char *method, *path;
        gw__match_result want;
        gw__route route;
        gw__op op;
        const char *id;
    } cases[] = {
        {"GET", "/", GW__MATCH_OK, GW__ROUTE_INDEX, GW__OP_INDEX, ""},
        {"HEAD", "/metrics", GW__MATCH_OK, GW__ROUTE_METRICS, GW__OP_METRICS, ""},
        {"GET", "/gpu/metrics", GW__MATCH_OK, GW__ROUTE_GPU_METRICS, GW__OP_GPU_METRICS, ""},
        {"GET", "/gpu/metrics/GPU-abc", GW__MATCH_OK, GW__ROUTE_GPU_ONE, GW__OP_GPU_ONE, "GPU-abc"},
        {"GET", "/gpu/metrics/", GW__MATCH_OK, GW__ROUTE_GPU_ONE, GW__OP_GPU_ONE, ""},
        {"GET", "/gpu/metrics/0/x", GW__MATCH_NO_ROUTE, GW__ROUTE_OTHER, GW__OP_COUNT, ""},
        {"POST", "/gpu/metrics", GW__MATCH_BAD_METHOD, GW__ROUTE_GPU_METRICS, GW__OP_COUNT, ""},
        {"POST", "/api/v1/reload", GW__MATCH_OK, GW__ROUTE_RELOAD, GW__OP_RELOAD, ""},
        {"GET", "/api/v1/reload", GW__MATCH_BAD_METHOD, GW__ROUTE_RELOAD, GW__OP_COUNT, ""},
        {"GET", "/api/v1/reservations", GW__MATCH_OK, GW__ROUTE_RESERVATIONS, GW__OP_RES_LIST, ""},
        {"POST", "/api/v1/reservations", GW__MATCH_OK, GW__ROUTE_RESERVATIONS, GW__OP_RES_CREATE, ""},
        {"DELETE", "/api/v1/reservations/17", GW__MATCH_OK, GW__ROUTE_RESERVATION, GW__OP_RES_DELETE, "17"},
        {"POST", "/api/v1/reservations/17/renew", GW__MATCH_OK, GW__ROUTE_RENEW, GW__OP_RES_RENEW, "17"},
        {"GET", "/api/v1/progress", GW__MATCH_OK, GW__ROUTE_PROGRESS, GW__OP_PROGRESS_LIST, ""},
        {"POST", "/api/v1/progress", GW__MATCH_OK, GW__ROUTE_PROGRESS, GW__OP_PROGRESS_REPORT, ""},
        {"DELETE", "/api/v1/progress", GW__MATCH_BAD_METHOD, GW__ROUTE_PROGRESS, GW__OP_COUNT, ""},
        {"POST", "/api/v1/reservations/17", GW__MATCH_BAD_METHOD, GW__ROUTE_RESERVATION, GW__OP_COUNT, ""},
        {"GET", "/api/v1/reservations/1/nope", GW__MATCH_NO_ROUTE, GW__ROUTE_OTHER, GW__OP_COUNT, ""},
        {"GET", "/metrics/", GW__MATCH_NO_ROUTE, GW__ROUTE_OTHER, GW__OP_COUNT, ""},
        {"GET", "//metrics", GW__MATCH_NO_ROUTE, GW__ROUTE_OTHER, GW__OP_COUNT, ""},
        {"GET", "", GW__MATCH_NO_ROUTE, GW__ROUTE_OTHER, GW__OP_COUNT, ""},
        {"get", "/metrics", GW__MATCH_BAD_METHOD, GW__ROUTE_METRICS, GW__OP_COUNT, ""},
        {"GET", "/{id}", GW__MATCH_NO_ROUTE, GW__ROUTE_OTHER, GW__OP_COUNT, ""},
        {"GET", "/ui/app.js", GW__MATCH_OK, GW__ROUTE_UI, GW__OP_UI, "app.js"},
        {"GET", "/ui/", GW__MATCH_OK, GW__ROUTE_UI, GW__OP_UI, ""},
        {"HEAD", "/ui/index.html", GW__MATCH_OK, GW__ROUTE_UI, GW__OP_UI, "index.html"},
        {"GET", "/ui", GW__MATCH_NO_ROUTE, GW__ROUTE_OTHER, GW__OP_COUNT, ""},
        {"GET", "/ui/a/b", GW__MATCH_NO_ROUTE, GW__ROUTE_OTHER, GW__OP_COUNT, ""},
        {"POST", "/ui/app.js", GW__MATCH_BAD_METHOD, GW__ROUTE_UI, GW__OP_COUNT, ""},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(cases); i++) {
        gw__route r;
        gw__op op = GW__OP_COUNT;
        char id[64];
        gw__match_result m = match(cases[i].method, cases[i].path, &r, &op, id, sizeof id);
        if (m != cases[i].want || r != cases[i].route)
            fail_msg("%s %s: result %d route %d", cases[i].method, cases[i].path, m, r);
        if (m == GW__MATCH_OK) {
            assert_int_equal(op, cases[i].op);
            assert_string_equal(id, cases[i].id);
            assert_int_equal(gw__op_get(op)->route, r);
        }
    }
    assert_string_equal(gw__route_name(GW__ROUTE_GPU_ONE), "/gpu/metrics/{id}");
    assert_string_equal(gw__route_name(GW__ROUTE_OTHER), "other");
    assert_true(gw__op_get(GW__OP_RES_DELETE)->flags & GW__OPF_MUTATING);
    assert_false(gw__op_get(GW__OP_PLAN)->flags & GW__OPF_MUTATING);
    assert_true(gw__op_get(GW__OP_PLAN)->flags & GW__OPF_BODY);
    assert_null(gw__op_get(GW__OP_COUNT));
    /* NULLs are no route, never a crash */
    gw__route r;
    gw__op op;
    const char *v;
    size_t n;
    assert_int_equal(gw__route_match(NULL, "/", &r, &op, &v, &n), GW__MATCH_NO_ROUTE);
    assert_int_equal(gw__route_match("GET", NULL, &r, &op, &v, &n), GW__MATCH_NO_ROUTE);
}

/* Garbage paths: every byte value, every prefix of every pattern, long
 * runs; the result is a valid enum and an {id} view inside the input. */
static void test_routes_garbage(void **state)
{
    (void)state;
    char path[600];
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % 40);
        if (round % 100 == 0)
            len = sizeof path - 1;
        for (size_t i = 0; i < len; i++) {
            unsigned x = (unsigned)rand_r(&seed);
            /* mostly route-ish bytes, sometimes anything (but NUL) */
            static const char alpha[] = "/gpumetricsapiv1reservations{id}renew0123";
            path[i] = (x & 7) ? alpha[x % (sizeof alpha - 1)] : (char)(1 + x % 255);
        }
        path[len] = '\0';
        gw__route r;
        gw__op op = GW__OP_COUNT;
        const char *v;
        size_t n;
        gw__match_result m = gw__route_match(round & 1 ? "GET" : "POST", path, &r, &op, &v, &n);
        assert_true(m == GW__MATCH_OK || m == GW__MATCH_NO_ROUTE || m == GW__MATCH_BAD_METHOD);
        assert_true((unsigned)r < GW__ROUTE_COUNT);
        if (m == GW__MATCH_OK) {
            assert_true((unsigned)op < GW__OP_COUNT);
            assert_true(!v || (v >= path && v + n <= path + len));
        }
        if (m == GW__MATCH_NO_ROUTE)
            assert_int_equal(r, GW__ROUTE_OTHER);
    }
    /* every prefix of every pattern's literal form */
    for (unsigned k = 0; k < GW__ROUTE_OTHER; k++) {
        const char *name = gw__route_name((gw__route)k);
        for (size_t i = 0; i <= strlen(name); i++) {
            char p[128];
            memcpy(p, name, i);
            p[i] = '\0';
            gw__route r;
            gw__op op;
            const char *v;
            size_t n;
            gw__match_result m = gw__route_match("GET", p, &r, &op, &v, &n);
            assert_true((unsigned)r < GW__ROUTE_COUNT);
            (void)m;
        }
    }
}

static void test_code_index(void **state)
{
    (void)state;
    assert_string_equal(gw__http_code_name(gw__http_code_index(200)), "200");
    assert_string_equal(gw__http_code_name(gw__http_code_index(401)), "401");
    assert_string_equal(gw__http_code_name(gw__http_code_index(418)), "other");
    assert_string_equal(gw__http_code_name(gw__http_code_index(0)), "other");
    assert_string_equal(gw__http_code_name(9999), "other");
    gw__http_counts c;
    memset(&c, 0, sizeof c);
    gw__http_count(&c, GW__ROUTE_METRICS, 200);
    gw__http_count(&c, GW__ROUTE_METRICS, 200);
    gw__http_count(&c, (gw__route)999, 418);
    assert_int_equal(atomic_load(&c.n[GW__ROUTE_METRICS][gw__http_code_index(200)]), 2);
    assert_int_equal(atomic_load(&c.n[GW__ROUTE_OTHER][GW__CODE_OTHER]), 1);
}

static gw__authz_scheme authz(const char *h, char *user, char *cred)
{
    char buf[64];
    const char *u, *c;
    size_t ul, cl;
    gw__authz_scheme s = gw__authz_parse(h, buf, sizeof buf, &u, &ul, &c, &cl);
    user[0] = cred[0] = '\0';
    if (u) {
        memcpy(user, u, ul);
        user[ul] = '\0';
    }
    if (c) {
        memcpy(cred, c, cl);
        cred[cl] = '\0';
    }
    return s;
}

static void test_authz_parse(void **state)
{
    (void)state;
    char u[128], c[128];
    assert_int_equal(authz(NULL, u, c), GW__AUTHZ_NONE);
    assert_int_equal(authz("Bearer s3cret", u, c), GW__AUTHZ_BEARER);
    assert_string_equal(c, "s3cret");
    assert_int_equal(authz("bearer  tok ", u, c), GW__AUTHZ_BEARER);
    assert_string_equal(c, "tok");
    /* "alice:pa:ss" */
    assert_int_equal(authz("Basic YWxpY2U6cGE6c3M=", u, c), GW__AUTHZ_BASIC);
    assert_string_equal(u, "alice");
    assert_string_equal(c, "pa:ss");
    /* ":" alone: empty user and password */
    assert_int_equal(authz("BASIC Og==", u, c), GW__AUTHZ_BASIC);
    assert_string_equal(u, "");
    const char *bad[] = {
        "Basic", "Basic ", "Basic YWxpY2U", "Basic YWxpY2U=", /* no ':' */
        "Basic YW=xpY2U6", "Basic ====", "Basic YWxp!2U6cA==", "Basic YWxpY2U6cA=a",
        /* longer than the 64-byte buffer once decoded */
        "Basic YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTpi",
        "Digest x", "Bearer", "Bearer ", "", "   ", "Basic\tYWxpY2U6cA==",
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(bad); i++)
        if (authz(bad[i], u, c) != GW__AUTHZ_OTHER)
            fail_msg("'%s' parsed", bad[i]);
    /* every truncation of a valid header: never a crash, never BASIC with
     * bytes from beyond the value */
    const char *good = "Basic YWxpY2U6cGE6c3M=";
    for (size_t i = 0; i < strlen(good); i++) {
        char h[64];
        memcpy(h, good, i);
        h[i] = '\0';
        gw__authz_scheme s = authz(h, u, c);
        assert_true(s == GW__AUTHZ_OTHER || s == GW__AUTHZ_BASIC);
        if (s == GW__AUTHZ_BASIC) /* "YWxpY2U6" is "alice:" */
            assert_true(strcmp(u, "alice") == 0 && strncmp("pa:ss", c, strlen(c)) == 0);
    }
}

static char *make_hash(const char *prefix, const char *pw)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    /* cost 4: the cheapest bcrypt, fine for a test */
    assert_non_null(crypt_gensalt_rn(prefix, strcmp(prefix, "$2b$") == 0 ? 4 : 0, NULL, 0, salt,
                                     sizeof salt));
    struct crypt_data *cd = calloc(1, sizeof *cd);
    assert_non_null(cd);
    char *h = strdup(crypt_r(pw, salt, cd));
    free(cd);
    assert_non_null(h);
    assert_true(h[0] == '$');
    return h;
}

static int parse(const char *text, gw__basic_auth **a, gw_error *err)
{
    return gw__basic_auth_parse(text, strlen(text), "users.txt", a, err);
}

static void test_basic_auth_file(void **state)
{
    (void)state;
    char *bc = make_hash("$2b$", "correct horse");
    char *sha = make_hash("$6$", "hunter2");
    char *yes = make_hash("$y$", "pw3");
    char text[2048];
    snprintf(text, sizeof text, "# users\n\nalice:%s\r\n  bob:%s\ncarol:%s", bc, sha, yes);
    gw__basic_auth *a = NULL;
    gw_error err;
    if (parse(text, &a, &err) != GW_OK)
        fail_msg("%s", err.message);
    assert_int_equal(gw__basic_auth_count(a), 3);
    assert_true(gw__basic_auth_check(a));
    assert_true(gw__basic_auth_verify(a, "alice", 5, "correct horse", 13));
    assert_true(gw__basic_auth_verify(a, "alice", 5, "correct horse", 13)); /* cached */
    assert_false(gw__basic_auth_verify(a, "alice", 5, "correct horsE", 13));
    assert_false(gw__basic_auth_verify(a, "alice", 5, "correct horse", 12));
    assert_true(gw__basic_auth_verify(a, "bob", 3, "hunter2", 7));
    assert_false(gw__basic_auth_verify(a, "bob", 3, "correct horse", 13)); /* alice's password */
    assert_true(gw__basic_auth_verify(a, "carol", 5, "pw3", 3));
    assert_false(gw__basic_auth_verify(a, "mallory", 7, "hunter2", 7));
    assert_false(gw__basic_auth_verify(a, "alic", 4, "correct horse", 13));
    assert_false(gw__basic_auth_verify(a, "bob", 3, "hunter2\0x", 9)); /* NUL inside */
    gw__basic_auth_free(a);

    /* Bad files: refused as a whole, FILE:LINE and the reason. */
    char md5[256];
    snprintf(md5, sizeof md5, "ok:%s\nold:$1$abcdefgh$0123456789012345678901\n", sha);
    char dup[1024];
    snprintf(dup, sizeof dup, "x:%s\n#\nx:%s\n", sha, bc);
    char apr[512];
    snprintf(apr, sizeof apr, "\n\nweb:$apr1$xyz$abcdefghijklmnopqrstuv\n");
    static char nul_line[64] = "a:$6$x\0yz\n";
    const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"alice:hunter2\n", "users.txt:1: user 'alice': the password is not a crypt(3) hash (plaintext"},
        {md5, "users.txt:2: user 'old': the password is an MD5 hash"},
        {apr, "users.txt:3: user 'web': the password is an MD5 hash"},
        {dup, "users.txt:3: user 'x' is listed twice"},
        {"no colon here\n", "users.txt:1: expected 'user:hash'"},
        {":$6$salt$hash\n", "users.txt:1: empty user name"},
        {"a:$6$\n", "users.txt:1: user 'a': the password is not a supported or well-formed"},
        {"a:$2b$99$abcdefghijklmnopqrstuu\n", "users.txt:1: user 'a': the password is not a supported"},
        {"a:$9$what\n", "users.txt:1: user 'a': the password is not a supported"},
        {"", "users.txt: no 'user:hash' line"},
        {"# only a comment\n\n", "users.txt: no 'user:hash' line"},
        {"a\x01:$6$x$y\n", "users.txt:1: control character in the user name"},
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(bad); i++) {
        a = (gw__basic_auth *)1;
        int rc = parse(bad[i].text, &a, &err);
        if (rc != GW_EINVAL)
            fail_msg("case %zu (%s): rc %d", i, bad[i].text, rc);
        assert_null(a);
        if (!strstr(err.message, bad[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.message, bad[i].want);
    }
    a = (gw__basic_auth *)1;
    assert_int_equal(gw__basic_auth_parse(nul_line, 10, "users.txt", &a, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "users.txt:1: NUL byte"));
    assert_null(a);

    /* Every prefix of a good file parses or fails cleanly (no crash, no leak). */
    for (size_t i = 0; i <= strlen(text); i++) {
        a = NULL;
        if (gw__basic_auth_parse(text, i, "users.txt", &a, &err) == GW_OK)
            assert_true(gw__basic_auth_check(a));
        gw__basic_auth_free(a);
    }
    free(bc);
    free(sha);
    free(yes);
}

static void test_basic_auth_load_and_tls_files(void **state)
{
    (void)state;
    gw__basic_auth *a = (gw__basic_auth *)1;
    gw_error err;
    assert_int_equal(gw__basic_auth_load("/nonexistent/users", &a, &err), GW_ENOENT);
    assert_null(a);
    assert_non_null(strstr(err.message, "basic_auth_file /nonexistent/users: no such file"));
    assert_int_equal(gw__basic_auth_load("/", &a, &err), GW_EIO);
    assert_non_null(strstr(err.message, "not a regular file"));

    char dir[] = "/tmp/gw-door-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[64], key[64];
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    gw__tls_pem pem;
    assert_int_equal(gw__tls_pem_load(cert, key, &pem, &err), GW_ENOENT);
    assert_non_null(strstr(err.message, "tls_cert_file"));
    assert_non_null(strstr(err.message, "no such file"));
    assert_null(pem.cert);
    FILE *f = fopen(cert, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(gw__tls_pem_load(cert, key, &pem, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "not a PEM certificate"));
    f = fopen(cert, "w");
    fputs("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    assert_int_equal(gw__tls_pem_load(cert, key, &pem, &err), GW_ENOENT);
    assert_non_null(strstr(err.message, "tls_key_file"));
    f = fopen(key, "w");
    fputs("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    assert_int_equal(gw__tls_pem_load(cert, key, &pem, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "tls_key_file"));
    assert_non_null(strstr(err.message, "not a PEM private key"));
    f = fopen(key, "w");
    fputs("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(gw__tls_pem_load(cert, key, &pem, &err), GW_EINVAL);
    assert_non_null(strstr(err.message, "encrypted"));
    f = fopen(key, "w");
    fputs("-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(gw__tls_pem_load(cert, key, &pem, &err), GW_OK);
    gw__tls_pem same;
    assert_int_equal(gw__tls_pem_load(cert, key, &same, &err), GW_OK);
    assert_true(gw__tls_pem_equal(&pem, &same));
    gw__tls_pem_release(&same);
    assert_false(gw__tls_pem_equal(&pem, &same));
    gw__tls_pem_release(&pem);
    assert_true(gw__tls_pem_equal(&pem, &same));
    if (geteuid() != 0) { /* root reads anything */
        chmod(key, 0);
        assert_int_equal(gw__tls_pem_load(cert, key, &pem, &err), GW_EIO);
        assert_non_null(strstr(err.message, "cannot read"));
    }
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_table),
        cmocka_unit_test(test_routes_garbage),
        cmocka_unit_test(test_code_index),
        cmocka_unit_test(test_authz_parse),
        cmocka_unit_test(test_basic_auth_file),
        cmocka_unit_test(test_basic_auth_load_and_tls_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
