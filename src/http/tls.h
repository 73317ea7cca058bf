/* tls.h — the certificate and key `gpuwatch serve` hands to libmicrohttpd.
 *
 * Owns: reading tls_cert_file and tls_key_file (both PEM) and the checks
 * that give an operator a message naming the file and what is wrong with
 * it: missing, unreadable, too large, not PEM, an encrypted key (no
 * passphrase support). Whether the key matches the certificate is only
 * known once GnuTLS parses both (server.c starts a daemon with them and
 * reports GnuTLS's reason, "... do not match").
 *
 * Invariant: a loaded gw__tls_pem holds two NUL-terminated texts, each
 * with a PEM block of the right kind; a released one holds NULLs.
 */
#ifndef GW_HTTP_TLS_H
#define GW_HTTP_TLS_H

#include "core/model.h"

#include <stdbool.h>

#define GW__TLS_MAX_FILE (1u << 20) /* bytes, each file */

typedef struct gw__tls_pem {
    char *cert; /* PEM text, NUL-terminated; owned */
    char *key;
} gw__tls_pem;

/* Reads both files into *out (which the caller releases with
 * gw__tls_pem_release). GW_ENOENT / GW_EIO / GW_EINVAL with a message
 * "tls_cert_file PATH: ..." or "tls_key_file PATH: ..."; on failure *out
 * holds NULLs. */
int gw__tls_pem_load(const char *cert_path, const char *key_path, gw__tls_pem *out, gw_error *err);

/* Frees both texts (the key is zeroed first). Safe on a released pem. */
void gw__tls_pem_release(gw__tls_pem *p);

/* True when a and b hold the same texts (both released counts as equal). */
bool gw__tls_pem_equal(const gw__tls_pem *a, const gw__tls_pem *b);

#endif
