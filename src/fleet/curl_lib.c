/* curl_lib.c — see curl_lib.h. */
#include "fleet/curl_lib.h"
#include "core/util.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

int gw__curl_load(gw__curl_lib *lib, const char *path, gw_error *err)
{
    memset(lib, 0, sizeof *lib);
    if (!path || !*path)
        path = getenv("GPUWATCH_CURL_LIBRARY");
    if (!path || !*path)
        path = "libcurl.so.4";
    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle)
        return gw__error_set(err, GW_ELOAD,
                             "cannot load %s (peers are fetched with libcurl; on Debian: apt "
                             "install libcurl4): %s", path, dlerror());
    static const struct {
        const char *name;
        size_t offset;
    } syms[] = {
#define SYM(f) {"curl_" #f, offsetof(gw__curl_lib, f)}
        SYM(global_init),     SYM(global_cleanup),     SYM(easy_init),
        SYM(easy_setopt),     SYM(easy_getinfo),       SYM(easy_cleanup),
        SYM(easy_strerror),   SYM(multi_init),         SYM(multi_add_handle),
        SYM(multi_remove_handle), SYM(multi_perform),  SYM(multi_poll),
        SYM(multi_info_read), SYM(multi_cleanup),      SYM(multi_strerror),
        SYM(slist_append),    SYM(slist_free_all),
#undef SYM
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(syms); i++) {
        void *fn = dlsym(lib->handle, syms[i].name);
        if (!fn) {
            gw__error_set(err, GW_ELOAD, "%s has no %s (libcurl 7.66 or later is needed)", path,
                          syms[i].name);
            dlclose(lib->handle);
            memset(lib, 0, sizeof *lib);
            return GW_ELOAD;
        }
        memcpy((char *)lib + syms[i].offset, &fn, sizeof fn);
    }
    if (lib->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        dlclose(lib->handle);
        memset(lib, 0, sizeof *lib);
        return gw__error_set(err, GW_ELOAD, "%s: curl_global_init failed", path);
    }
    return GW_OK;
}

void gw__curl_unload(gw__curl_lib *lib)
{
    if (lib->handle) {
        lib->global_cleanup();
        dlclose(lib->handle);
    }
    memset(lib, 0, sizeof *lib);
}
