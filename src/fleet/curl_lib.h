/* curl_lib.h — libcurl, loaded at run time by the commands that talk to
 * peers (report --cluster, place --cluster, the daemon with peers).
 *
 * Why: Debian's libcurl4 pulls in OpenSSL, nghttp2, libssh2, LDAP, GSSAPI,
 * libpsl and more. Linked into the gpuwatch binary, every `report` would
 * load and relocate them; only the fleet code needs HTTPS, so only it loads
 * libcurl (the same reasoning as http/mhd_lib.h).
 *
 * Owns: the library handle, one curl_global_init/cleanup pair per load,
 * and one pointer per function the fleet calls, typed from <curl/curl.h>
 * so a mismatch is a compile error.
 * Invariant: after a successful gw__curl_load every pointer is non-NULL.
 */
#ifndef GW_FLEET_CURL_LIB_H
#define GW_FLEET_CURL_LIB_H

#include "core/model.h"

#include <curl/curl.h>

typedef struct gw__curl_lib {
    void *handle;
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_global_cleanup) *global_cleanup;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_multi_init) *multi_init;
    __typeof__(curl_multi_add_handle) *multi_add_handle;
    __typeof__(curl_multi_remove_handle) *multi_remove_handle;
    __typeof__(curl_multi_perform) *multi_perform;
    __typeof__(curl_multi_poll) *multi_poll;
    __typeof__(curl_multi_info_read) *multi_info_read;
    __typeof__(curl_multi_cleanup) *multi_cleanup;
    __typeof__(curl_multi_strerror) *multi_strerror;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
} gw__curl_lib;

/* Loads libcurl (path NULL: $GPUWATCH_CURL_LIBRARY, else "libcurl.so.4",
 * the soname of Debian's libcurl4 / libcurl3-gnutls builds) and resolves
 * every function into *lib, then calls curl_global_init. On failure returns
 * GW_ELOAD with a message naming the library or the missing symbol (and
 * the package to install), *lib left unloaded. Release with
 * gw__curl_unload. Call it before starting threads that use curl. */
int gw__curl_load(gw__curl_lib *lib, const char *path, gw_error *err);

/* curl_global_cleanup and unload; safe on a zeroed or unloaded lib. */
void gw__curl_unload(gw__curl_lib *lib);

#endif
