/* fuzz_ollama.c — libFuzzer target for the Ollama /api/ps decoder
 * (src/models/servers.c): any body must decode or fail cleanly; what
 * decodes has a name per model, strings ending within their fields, a
 * digest that is empty or 64 hex digits, and a location; a failure leaves
 * no model behind (servers.h invariant 1). Built by scripts/fuzz-ollama.sh;
 * its corpus (tests/models/corpus/fuzz_ollama) replays as a normal test. */
#include "models/servers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void bounded(const char *s, size_t cap)
{
    if (strnlen(s, cap) == cap)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw__model_server s;
    memset(&s, 0, sizeof s);
    gw_error err;
    if (gw__ollama_ps_parse((const char *)data, size, &s, &err) != GW_OK) {
        if (s.n_models || s.models)
            abort();
        return 0;
    }
    for (size_t i = 0; i < s.n_models; i++) {
        const gw__loaded_model *m = &s.models[i];
        bounded(m->name, sizeof m->name);
        bounded(m->family, sizeof m->family);
        bounded(m->parameter_size, sizeof m->parameter_size);
        bounded(m->quantization, sizeof m->quantization);
        if (!m->name[0] || (m->digest[0] && strspn(m->digest, "0123456789abcdef") != 64) ||
            strlen(m->digest) > 64)
            abort();
        char where[24];
        gw__loaded_model_location(m, where, sizeof where);
        bounded(where, sizeof where);
    }
    gw__model_server_release(&s);
    return 0;
}
