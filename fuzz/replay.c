/* replay.c — runs a libFuzzer target's entry point over files, without
 * libFuzzer.
 *
 * Owns: the main() of every corpus replay test. It is linked with exactly
 * one target (LLVMFuzzerTestOneInput): fuzz_gguf.c, fuzz_estimate.c,
 * fuzz_smi_csv.c, fuzz_rocm_json.c or fuzz_drm_text.c (see the meson.build
 * of tests/gguf, estimate, smi and amd). Each argument is a file or a
 * directory (its regular files whose names do not start with '.', not
 * recursive). Each input is copied into a buffer of exactly its size
 * followed by an inaccessible guard page, so a read one byte past the end
 * faults even without ASan. A crash (a target's own abort on a broken
 * invariant included) or a sanitizer report is the failure; the target's
 * return value is not looked at. Exit 0 when every input was replayed, 1
 * when one could not be read or mapped. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: cannot open\n", path);
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        return 1;
    }
    /* Place the input so that it ends exactly at a PROT_NONE page. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = (len + page - 1) / page * page;
    uint8_t *map = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    if (map == MAP_FAILED) {
        free(buf);
        return 1;
    }
    mprotect(map + span, page, PROT_NONE);
    uint8_t *at = map + span - len;
    memcpy(at, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(at, len);
    munmap(map, span + page);
    return 0;
}

int main(int argc, char **argv)
{
    int bad = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            bad |= replay_file(argv[i]);
            count++;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            struct stat st;
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            bad |= replay_file(path);
            count++;
        }
        closedir(d);
    }
    printf("replay: %d inputs\n", count);
    return bad;
}
