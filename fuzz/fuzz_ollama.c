/* fuzz_ollama.c — libFuzzer target for the model-server decoders
 * (src/models/servers.c): Ollama's /api/ps and llama-server's /props
 * bodies, each input given to both: any body must decode or fail cleanly;
 * what decodes has a name per model, strings ending within their fields, a
 * digest that is empty or 64 hex digits, and a location; a failure leaves
 * no model behind (servers.h invariant 1). The input as a llama-server's
 * /metrics: only llamacpp_* counters and gauges come out, names and labels
 * bounded, no line break anywhere. The input as a command line: a
 * llama-server URL, when one comes out, is http://HOST:PORT. Built by scripts/fuzz-ollama.sh;
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

static void check_models(int (*parse)(const char *, size_t, gw__model_server *, gw_error *),
                         const uint8_t *data, size_t size)
{
    gw__model_server s;
    memset(&s, 0, sizeof s);
    gw_error err;
    if (parse((const char *)data, size, &s, &err) != GW_OK) {
        if (s.n_models || s.models)
            abort();
        return;
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_models(gw__ollama_ps_parse, data, size);
    check_models(gw__llamacpp_props_parse, data, size);
    gw__model_server ms;
    memset(&ms, 0, sizeof ms);
    gw_error err;
    if (gw__llamacpp_metrics_parse((const char *)data, size, &ms, &err) != GW_OK)
        abort();
    for (size_t i = 0; i < ms.n_samples; i++) {
        const gw__server_sample *m = &ms.samples[i];
        bounded(m->name, sizeof m->name);
        bounded(m->labels, sizeof m->labels);
        bounded(m->help, sizeof m->help);
        if (strncmp(m->name, "llamacpp_", 9) != 0 || strchr(m->name, ':') ||
            strpbrk(m->labels, "\n\r") || strpbrk(m->help, "\n\r\\") ||
            (strcmp(m->type, "counter") != 0 && strcmp(m->type, "gauge") != 0))
            abort();
    }
    if (ms.n_samples > GW__SERVER_MAX_SAMPLES)
        abort();
    gw__model_server_release(&ms);
    char cmdline[512], url[300];
    size_t n = size < sizeof cmdline - 1 ? size : sizeof cmdline - 1;
    memcpy(cmdline, data, n);
    cmdline[n] = '\0';
    if (gw__llamacpp_url_of(cmdline, url, sizeof url) &&
        (strncmp(url, "http://", 7) != 0 || !strrchr(url, ':')))
        abort();
    return 0;
}
