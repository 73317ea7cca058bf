/* tls.c — see tls.h. Owns the PEM checks of the TLS files. */
#include "http/tls.h"
#include "core/util.h"
#include "http/auth.h"

#include <stdlib.h>
#include <string.h>

static int check_cert(const char *path, const char *text, gw_error *err)
{
    if (!strstr(text, "-----BEGIN CERTIFICATE-----"))
        return gw__error_set(err, GW_EINVAL,
                             "tls_cert_file %s: not a PEM certificate (no '-----BEGIN CERTIFICATE-----' "
                             "line; DER files need `openssl x509 -inform der -out FILE.pem`)",
                             path);
    return GW_OK;
}

static int check_key(const char *path, const char *text, gw_error *err)
{
    if (strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----") || strstr(text, "Proc-Type: 4,ENCRYPTED"))
        return gw__error_set(err, GW_EINVAL,
                             "tls_key_file %s: the key is encrypted; gpuwatch takes no passphrase "
                             "(decrypt it: `openssl pkey -in KEY -out PLAIN.pem`)",
                             path);
    const char *b = strstr(text, "-----BEGIN ");
    for (; b; b = strstr(b + 1, "-----BEGIN ")) {
        const char *eol = strchr(b, '\n');
        const char *pk = strstr(b, "PRIVATE KEY-----");
        if (pk && (!eol || pk < eol))
            return GW_OK;
    }
    return gw__error_set(err, GW_EINVAL,
                         "tls_key_file %s: not a PEM private key (no '-----BEGIN ... PRIVATE KEY-----' "
                         "line)",
                         path);
}

int gw__tls_pem_load(const char *cert_path, const char *key_path, gw__tls_pem *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    size_t n;
    int rc = gw__read_secret_file("tls_cert_file", cert_path, GW__TLS_MAX_FILE, &out->cert, &n, err);
    if (rc == GW_OK)
        rc = check_cert(cert_path, out->cert, err);
    if (rc == GW_OK)
        rc = gw__read_secret_file("tls_key_file", key_path, GW__TLS_MAX_FILE, &out->key, &n, err);
    if (rc == GW_OK)
        rc = check_key(key_path, out->key, err);
    if (rc != GW_OK)
        gw__tls_pem_release(out);
    return rc;
}

void gw__tls_pem_release(gw__tls_pem *p)
{
    if (p->key)
        explicit_bzero(p->key, strlen(p->key));
    free(p->cert);
    free(p->key);
    p->cert = p->key = NULL;
}

bool gw__tls_pem_equal(const gw__tls_pem *a, const gw__tls_pem *b)
{
    if (!a->cert || !b->cert)
        return !a->cert && !b->cert;
    return strcmp(a->cert, b->cert) == 0 && a->key && b->key && strcmp(a->key, b->key) == 0;
}
