/* test_top_model.c — `top` without a terminal: the frame model (sorting,
 * filtering, N/A for invalid figures, sanitizing), the progress arithmetic
 * behind the bars (rate, ETA), the plain line, and the key map. */
#include "top/input.h"
#include "top/model.h"

#include <curses.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A snapshot of 2 GPUs and 4 processes, allocated as gw_snapshot_release
 * frees it (struct, devices, processes, sources). */
static gw_snapshot *make_snapshot(void)
{
    gw_snapshot *s = calloc(1, sizeof *s);
    s->refcount__ = 1;
    s->n_devices = 2;
    s->devices = calloc(2, sizeof *s->devices);
    for (uint32_t i = 0; i < 2; i++) {
        gw_device *d = &s->devices[i];
        d->info.index = i;
        snprintf(d->info.name, sizeof d->info.name, "GPU\x1b[31m%u", i);
        d->sample.valid = (1u << GW_METRIC_UTIL_GPU) | (1u << GW_METRIC_MEM_USED) |
                          (1u << GW_METRIC_MEM_TOTAL);
        d->sample.util_gpu = 10.0 * (i + 1);
        d->sample.mem_used = (uint64_t)(i + 1) << 30;
        d->sample.mem_total = 8ull << 30;
        d->sampled_at_ns = 1000000000LL;
    }
    s->devices[1].state = GW_DEVICE_LOST;
    s->n_processes = 4;
    s->processes = calloc(4, sizeof *s->processes);
    const uint32_t pids[] = {300, 100, 400, 200};
    const uint64_t mem[] = {1, 4, 2, 3};
    for (int i = 0; i < 4; i++) {
        gw_process *p = &s->processes[i];
        p->pid = pids[i];
        p->device_index = (uint32_t)(i % 2);
        p->valid = (1u << GW_PROC_GPU_MEMORY) | (1u << GW_PROC_CMDLINE) | (1u << GW_PROC_USER);
        p->gpu_memory = mem[i] << 20;
        snprintf(p->cmdline, sizeof p->cmdline, "python train%d.py", i);
        snprintf(p->user, sizeof p->user, "u%d", i);
    }
    s->processes[2].valid &= ~(1u << GW_PROC_GPU_MEMORY); /* unknown: sorts last */
    return s;
}

static void test_sort_filter(void **state)
{
    (void)state;
    gw_snapshot *s = make_snapshot();
    gw__top_inputs in = {.snap = s, .now_ns = 3000000000LL};
    gw__top_view view = {.sort = GW__TOP_COL_GPU_MEM};
    gw__top_model m;
    assert_int_equal(gw__top_model_build(&m, &in, &view), GW_OK);
    gw_snapshot_release(s); /* the model holds its own reference */
    assert_int_equal(m.n_procs, 4);
    assert_int_equal(m.procs[0].pid, 100); /* 4 MiB */
    assert_int_equal(m.procs[1].pid, 200);
    assert_int_equal(m.procs[2].pid, 300);
    assert_int_equal(m.procs[3].pid, 400); /* unknown memory last */
    assert_false(m.procs[3].has_gpu_mem);
    view.sort = GW__TOP_COL_PID;
    gw__top_model_sort(&m, &view);
    assert_int_equal(m.procs[0].pid, 100);
    assert_int_equal(m.procs[3].pid, 400);
    view.reverse = true;
    gw__top_model_sort(&m, &view);
    assert_int_equal(m.procs[0].pid, 400);
    strcpy(view.filter, "TRAIN2");
    gw__top_model_sort(&m, &view);
    assert_int_equal(m.n_procs, 1);
    assert_int_equal(m.procs[0].pid, 400);
    assert_int_equal(m.n_procs_total, 4);
    /* names are sanitized: no ESC reaches the terminal */
    assert_null(strchr(m.gpus[0].name, '\x1b'));
    assert_int_equal(m.gpus[0].n_procs, 2);
    assert_true(fabs(m.gpus[0].age_s - 2.0) < 1e-9);
    gw__top_model_release(&m);
}

static void test_plain_line(void **state)
{
    (void)state;
    gw_snapshot *s = make_snapshot();
    gw__top_inputs in = {.snap = s, .now_ns = 1500000000LL};
    gw__top_view view = {.sort = GW__TOP_COL_PID};
    gw__top_model m;
    assert_int_equal(gw__top_model_build(&m, &in, &view), GW_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    gw__top_print_plain(f, &m);
    fclose(f);
    assert_non_null(strstr(buf, "gpu=0 name=\"GPU?[31m0\" util=10% mem=1024/8192MiB temp=N/A "
                                "slowdown=N/A power=N/A limit=N/A fan=N/A pstate=N/A state=ok "
                                "age=0.5s procs=2\n"));
    /* a lost GPU shows no figures even if its sample had some */
    assert_non_null(strstr(buf, "gpu=1 name=\"GPU?[31m1\" util=N/A mem=N/A"));
    assert_non_null(strstr(buf, "state=lost"));
    free(buf);
    gw__top_model_release(&m);
    gw_snapshot_release(s);
}

static void test_progress(void **state)
{
    (void)state;
    gw_progress p = {.done = 450, .total = 1000, .start_done = 50,
                     .started_ns = 10000000000LL, .updated_ns = 30000000000LL};
    assert_true(fabs(gw_progress_rate(&p) - 20.0) < 1e-9);  /* 400 in 20 s */
    assert_true(fabs(gw_progress_eta(&p) - 27.5) < 1e-9);   /* 550 left */
    p.total = 0;
    assert_true(gw_progress_eta(&p) < 0); /* unknown total */
    p.updated_ns = p.started_ns;
    assert_true(gw_progress_rate(&p) < 0); /* no time elapsed */
}

static void test_sanitize(void **state)
{
    (void)state;
    char out[8];
    gw__top_sanitize(out, sizeof out, "a\tb\x7f", false);
    assert_string_equal(out, "a?b?");
    gw__top_sanitize(out, sizeof out, "ab\xc3\xa9", true);
    assert_string_equal(out, "ab??");
    /* a UTF-8 sequence cut by the cap is dropped, not half-written */
    gw__top_sanitize(out, 4, "ab\xe2\x96\x88", false);
    assert_string_equal(out, "ab");
}

/* The MODEL column: the file name after -m / --model / --model-path,
 * space or '=' separated, whichever comes first; none for Ollama's blobs,
 * flags that only start like one, or a flag at the end. */
static void test_model_of(void **state)
{
    (void)state;
    static const struct {
        const char *cmdline, *want;
    } cases[] = {
        {"llama-server -m /models/llama-3-8b.Q4_K_M.gguf --port 8080", "llama-3-8b.Q4_K_M.gguf"},
        {"llama-server --model=/srv/m/qwen2.5-7b.gguf -c 8192", "qwen2.5-7b.gguf"},
        {"python3 -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-3-8B",
         "Llama-3-8B"}, /* python's -m is a module, not a model */
        {"python3 -m http.server 8000", ""},
        {"llama-server -m /a/first.gguf --model /b/second.gguf", "second.gguf"},
        {"vllm serve --model-path /w/phi-3 --tp 2", "phi-3"},
        {"ollama runner --model /root/.ollama/models/blobs/sha256-6a0746a1ec1a --ctx-size 8192",
         ""},
        {"llama-cli --models-dir /m -mm x", ""},
        {"llama-server -m", ""},
        {"", ""},
        {"train.py --model-name bert", ""},
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = gw__top_model_of(cases[i].cmdline, out, sizeof out);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s: got '%s', want '%s'", cases[i].cmdline, got, cases[i].want);
    }
    /* control bytes are sanitized; a long name is cut to the buffer */
    gw__top_model_of("llama-server -m /m/a\x1b[31mb.gguf", out, sizeof out);
    assert_string_equal(out, "a?[31mb.gguf");
    char small[8];
    gw__top_model_of("llama-server -m /m/abcdefghijk.gguf", small, sizeof small);
    assert_string_equal(small, "abcdefg");
}

static void test_keys(void **state)
{
    (void)state;
    int ch = 0;
    assert_int_equal(gw__top_key_action('q', GW__TOP_MODE_NORMAL, &ch), GW__TOP_ACT_QUIT);
    assert_int_equal(gw__top_key_action(KEY_F(6), GW__TOP_MODE_NORMAL, &ch),
                     GW__TOP_ACT_SORT_NEXT);
    assert_int_equal(gw__top_key_action('s', GW__TOP_MODE_NORMAL, &ch), GW__TOP_ACT_SORT_NEXT);
    assert_int_equal(gw__top_key_action(KEY_F(9), GW__TOP_MODE_NORMAL, &ch), GW__TOP_ACT_KILL);
    /* q typed into the filter is text */
    assert_int_equal(gw__top_key_action('q', GW__TOP_MODE_FILTER, &ch), GW__TOP_ACT_TEXT);
    assert_int_equal(ch, 'q');
    /* only y confirms */
    assert_int_equal(gw__top_key_action('y', GW__TOP_MODE_CONFIRM, &ch), GW__TOP_ACT_ACCEPT);
    assert_int_equal(gw__top_key_action('\n', GW__TOP_MODE_CONFIRM, &ch), GW__TOP_ACT_CANCEL);
    assert_int_equal(gw__top_key_action('k', GW__TOP_MODE_CONFIRM, &ch), GW__TOP_ACT_CANCEL);
    assert_int_equal(gw__top_move(0, GW__TOP_ACT_UP, 5, 3), 0);
    assert_int_equal(gw__top_move(3, GW__TOP_ACT_PAGE_DOWN, 5, 3), 4);
    assert_int_equal(gw__top_move(2, GW__TOP_ACT_END, 0, 3), 0);
    assert_int_equal(gw__top_click_row(10, 8, 5, 4, 100), 7);
    assert_int_equal(gw__top_click_row(12, 8, 5, 4, 100), -1);
    assert_int_equal(gw__top_click_row(9, 8, 0, 4, 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sort_filter), cmocka_unit_test(test_plain_line),
        cmocka_unit_test(test_progress),    cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_keys),        cmocka_unit_test(test_model_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
