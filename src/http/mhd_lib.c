/* mhd_lib.c — see mhd_lib.h. */
#include "http/mhd_lib.h"
#include "core/util.h"

#include <dlfcn.h>
#include <string.h>

int gw__mhd_load(gw__mhd_lib *lib, const char *path, gw_error *err)
{
    memset(lib, 0, sizeof *lib);
    if (!path)
        path = "libmicrohttpd.so.12";
    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle)
        return gw__error_set(err, GW_ELOAD, "http: cannot load %s: %s", path, dlerror());
    static const struct {
        const char *name;
        size_t offset;
    } syms[] = {
#define SYM(f) {"MHD_" #f, offsetof(gw__mhd_lib, f)}
        SYM(start_daemon),
        SYM(stop_daemon),
        SYM(get_daemon_info),
        SYM(create_response_from_buffer),
        SYM(create_response_from_callback),
        SYM(add_response_header),
        SYM(destroy_response),
        SYM(queue_response),
        SYM(lookup_connection_value),
        SYM(suspend_connection),
        SYM(resume_connection),
        SYM(get_connection_info),
        SYM(run),
        SYM(get_timeout),
        SYM(quiesce_daemon),
        SYM(is_feature_supported),
#undef SYM
    };
    for (size_t i = 0; i < GW__ARRAY_LEN(syms); i++) {
        void *fn = dlsym(lib->handle, syms[i].name);
        if (!fn) {
            gw__error_set(err, GW_ELOAD, "http: %s has no %s", path, syms[i].name);
            gw__mhd_unload(lib);
            return GW_ELOAD;
        }
        memcpy((char *)lib + syms[i].offset, &fn, sizeof fn);
    }
    return GW_OK;
}

void gw__mhd_unload(gw__mhd_lib *lib)
{
    if (lib->handle)
        dlclose(lib->handle);
    memset(lib, 0, sizeof *lib);
}
