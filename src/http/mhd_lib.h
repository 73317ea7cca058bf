/* mhd_lib.h — libmicrohttpd, loaded at run time by the daemon only.
 *
 * Why: libmicrohttpd pulls in GnuTLS and its dependency tree (p11-kit,
 * nettle, gmp, idn2, ...): linked into the gpuwatch binary, every command —
 * `report`, `fit` — paid for loading and relocating them (about 3 MiB of RSS
 * and 2 ms per run). Only `serve` needs HTTP, so only `serve` loads it.
 *
 * Owns: the library handle and one pointer per function the server calls,
 * typed from <microhttpd.h> itself so a mismatch is a compile error.
 * Invariant: after a successful gw__mhd_load every pointer is non-NULL.
 */
#ifndef GW_HTTP_MHD_LIB_H
#define GW_HTTP_MHD_LIB_H

#include "core/model.h"

#include <microhttpd.h>

typedef struct gw__mhd_lib {
    void *handle;
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_get_daemon_info) *get_daemon_info;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_create_response_from_callback) *create_response_from_callback;
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_lookup_connection_value) *lookup_connection_value;
    __typeof__(MHD_suspend_connection) *suspend_connection;
    __typeof__(MHD_resume_connection) *resume_connection;
    __typeof__(MHD_quiesce_daemon) *quiesce_daemon;
    __typeof__(MHD_is_feature_supported) *is_feature_supported;
    __typeof__(MHD_get_connection_info) *get_connection_info;
    __typeof__(MHD_run) *run;
    __typeof__(MHD_get_timeout) *get_timeout;
} gw__mhd_lib;

/* Loads libmicrohttpd (path NULL: "libmicrohttpd.so.12", the soname Debian
 * 12 ships) and resolves every function into *lib. On failure returns
 * GW_ELOAD with a message naming the library or the missing symbol, and
 * *lib is left unloaded. Release with gw__mhd_unload. */
int gw__mhd_load(gw__mhd_lib *lib, const char *path, gw_error *err);

/* Unloads the library; lib's pointers must not be used again. Safe on a
 * zeroed or already unloaded lib. */
void gw__mhd_unload(gw__mhd_lib *lib);

#endif
