/* render.c — layout and drawing of `gpuwatch top` (render.h).
 *
 * Owns: all of ncurses (initscr/endwin, stdscr, LINES/COLS, colour pairs);
 * no other file of the program calls it. No state of its own: what the
 * terminal can do travels as a gw__top_caps argument (k). A frame is laid
 * out from the top:
 *
 *   title line                      (host, time, sort, filter)
 *   banner                          (newest warning/critical event, < 60 s)
 *   GPUs: full blocks (name line, bars line, chart rows) or, for 8+ GPUs
 *         or a short screen, one compact line each
 *   job progress bars               (one per job and GPU)
 *   process table                   (header + rows, the selected one reversed)
 *   event log pane                  (when rows are left)
 *   footer                          (keys, or the filter / kill prompt)
 *
 * Every write goes through put(), which clips to the screen (invariant 1).
 */
#define NCURSES_WIDECHAR 1
#include "top/render.h"

#include "core/util.h"

#include <curses.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#define MIB (1024.0 * 1024.0)

enum { PAIR_OK = 1, PAIR_WARN, PAIR_CRIT, PAIR_HEAD, PAIR_BANNER, PAIR_DIM };

/* ------------------------------------------------------------ screen */

int gw__top_screen_open(bool no_color, gw__top_caps *caps)
{
    const char *term = getenv("TERM");
    if (!term || !term[0] || strcmp(term, "dumb") == 0)
        return GW_ENOTSUP;
    int errret = 0;
    if (setupterm(NULL, 1, &errret) != OK)
        return GW_ENOTSUP;
    const char *cup = tigetstr("cup");
    bool addressable = cup && cup != (char *)-1;
    del_curterm(cur_term);
    if (!addressable)
        return GW_ENOTSUP;
    setlocale(LC_ALL, "");
    const char *cs = nl_langinfo(CODESET);
    memset(caps, 0, sizeof *caps);
    caps->utf8 = cs && strcmp(cs, "UTF-8") == 0;
    if (!newterm(NULL, stdout, stdin))
        return GW_ENOTSUP;
    raw(); /* Ctrl-C is a key (quit), so the terminal is always restored */
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
    if (!no_color && has_colors() && start_color() == OK) {
        use_default_colors();
        caps->colors = COLORS >= 256 ? 256 : 8;
        bool rich = caps->colors == 256;
        init_pair(PAIR_OK, rich ? 76 : COLOR_GREEN, -1);
        init_pair(PAIR_WARN, rich ? 214 : COLOR_YELLOW, -1);
        init_pair(PAIR_CRIT, rich ? 196 : COLOR_RED, -1);
        init_pair(PAIR_HEAD, rich ? 39 : COLOR_CYAN, -1);
        init_pair(PAIR_BANNER, COLOR_WHITE, rich ? 124 : COLOR_RED);
        init_pair(PAIR_DIM, rich ? 244 : COLOR_BLUE, -1);
    }
    return GW_OK;
}

void gw__top_screen_close(void)
{
    if (stdscr && !isendwin())
        endwin();
}

void gw__top_screen_size(int *width, int *height)
{
    *width = COLS;
    *height = LINES;
}

/* A key read by getch (k != ERR) as gw__top_screen_key returns it. */
static int key_of(int k, int *mouse_y)
{
    if (k == ERR)
        return -1;
    if (k == KEY_MOUSE) {
        MEVENT ev;
        if (getmouse(&ev) != OK)
            return -1;
        if (ev.bstate & BUTTON4_PRESSED)
            return KEY_UP;
        if (ev.bstate & BUTTON5_PRESSED)
            return KEY_DOWN;
        *mouse_y = ev.y;
        return GW__TOP_KEY_CLICK;
    }
    return k;
}

int gw__top_screen_key(int timeout_ms, int fd, int *mouse_y)
{
    if (fd < 0) {
        timeout(timeout_ms);
        return key_of(getch(), mouse_y);
    }
    timeout(0); /* keys ncurses holds already come first */
    int k = getch();
    if (k != ERR)
        return key_of(k, mouse_y);
    struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    int n = poll(p, 2, timeout_ms);
    if (n > 0 && p[1].revents)
        return GW__TOP_KEY_FD;
    if (n == 0)
        return -1;
    return key_of(getch(), mouse_y); /* a key, or EINTR: a resize (KEY_RESIZE) */
}

size_t gw__top_chart_points(int width)
{
    int w = (width - 14) / 2; /* two charts side by side, labels 7 each */
    return w < 4 ? 4 : (size_t)w;
}

/* ------------------------------------------------------------ drawing */

/* Writes s at (y, x), at most maxw columns, clipped to the screen; returns
 * the columns written. Bytes that are not valid in the locale become '?'. */
static int put(int y, int x, int maxw, const char *s)
{
    if (y < 0 || y >= LINES || x < 0 || x >= COLS || maxw <= 0)
        return 0;
    if (maxw > COLS - x)
        maxw = COLS - x;
    mbstate_t st;
    memset(&st, 0, sizeof st);
    move(y, x);
    int cols = 0;
    while (*s && cols < maxw) {
        /* printable ASCII, one column each: copied as cells in one call
         * (waddnstr would take every byte through the multibyte path) */
        chtype cells[256];
        int run = 0;
        chtype attr = (chtype)getattrs(stdscr);
        while (cols + run < maxw && run < (int)GW__ARRAY_LEN(cells) && s[run] >= 0x20 &&
               s[run] < 0x7f) {
            cells[run] = (chtype)(unsigned char)s[run] | attr;
            run++;
        }
        if (run) {
            addchnstr(cells, run); /* the cursor stays: move past the run */
            cols += run;
            s += run;
            move(y, x + cols);
            continue;
        }
        wchar_t wc;
        size_t n = mbrtowc(&wc, s, strnlen(s, MB_LEN_MAX), &st);
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
            wc = L'?';
            n = 1;
            memset(&st, 0, sizeof st);
        }
        int w = wcwidth(wc);
        if (w < 0) {
            wc = L'?';
            w = 1;
        }
        if (cols + w > maxw)
            break;
        addnwstr(&wc, 1);
        cols += w;
        s += n;
    }
    return cols;
}

/* Line y in attribute attr across the whole width, text s from column 0
 * (the banner and the key line). */
static void full_line(int y, const char *s, int attr)
{
    attron(attr);
    move(y, 0);
    for (int i = 0; i < COLS; i++)
        addch(' ');
    put(y, 0, COLS, s);
    attroff(attr);
}

static int color(const gw__top_caps *k, int pair)
{
    return k->colors ? COLOR_PAIR(pair) : 0;
}

/* Colour of a level 0..1 (green, yellow from 0.75, red from 0.9). */
static int level_attr(const gw__top_caps *k, double frac)
{
    if (!k->colors)
        return frac >= 0.9 ? A_BOLD : 0;
    return color(k, frac >= 0.9 ? PAIR_CRIT : frac >= 0.75 ? PAIR_WARN : PAIR_OK);
}

/* A bar "[|||||    label]" of width w at (y, x), frac 0..1 or NaN. */
static void bar(const gw__top_caps *k, int y, int x, int w, double frac, const char *label)
{
    if (w < 3)
        return;
    int inner = w - 2;
    put(y, x, 1, "[");
    put(y, x + w - 1, 1, "]");
    int llen = (int)strlen(label);
    int lx = inner - llen; /* label right-aligned inside */
    double f = isnan(frac) ? 0 : frac < 0 ? 0 : frac > 1 ? 1 : frac;
    int eighths = (int)lround(f * inner * 8);
    static const char *const part[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    int nbar = lx >= 0 ? lx : inner; /* the label's cells are plain text */
    char cells[4 * 512 + 1];
    size_t at = 0;
    for (int i = 0; i < nbar && at + 4 < sizeof cells; i++) {
        const char *c = " ";
        int fill = eighths - i * 8;
        if (fill >= 8)
            c = k->utf8 ? "█" : "|";
        else if (fill > 0 && k->utf8)
            c = part[fill];
        size_t n = strlen(c);
        memcpy(cells + at, c, n);
        at += n;
    }
    cells[at] = '\0';
    attron(level_attr(k, f));
    put(y, x + 1, nbar, cells);
    attroff(level_attr(k, f));
    if (lx >= 0)
        put(y, x + 1 + lx, llen, label);
}

/* One row of a chart of n values (percent, NaN none) at (y, x): row `r`
 * of `h` counted from the bottom. */
static void chart_row(const gw__top_caps *k, int y, int x, const double *v, size_t n, int r,
                      int h)
{
    static const char *const blocks[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    static const char ascii[] = " ..--==##";
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i])) {
            put(y, x + (int)i, 1, " ");
            continue;
        }
        double level = v[i] / 100.0 * h * 8; /* in eighths of a row */
        int e = (int)lround(level) - r * 8;
        e = e < 0 ? 0 : e > 8 ? 8 : e;
        if (v[i] > 0 && r == 0 && e == 0)
            e = 1; /* something, not nothing */
        attron(level_attr(k, v[i] / 100.0));
        if (k->utf8) {
            put(y, x + (int)i, 1, blocks[e]);
        } else {
            char c[2] = {ascii[e], 0};
            put(y, x + (int)i, 1, c);
        }
        attroff(level_attr(k, v[i] / 100.0));
    }
}

/* ------------------------------------------------------------ GPU text */

static bool gpu_alive(const gw_device *d)
{
    return d->state != GW_DEVICE_LOST;
}

static void util_text(char *b, size_t cap, const gw_device *d, double *frac)
{
    const gw_sample *s = &d->sample;
    *frac = NAN;
    if (gpu_alive(d) && gw_sample_has(s, GW_METRIC_UTIL_GPU)) {
        snprintf(b, cap, "%.0f%%", s->util_gpu);
        *frac = s->util_gpu / 100.0;
    } else {
        gw__strlcpy(b, "N/A", cap);
    }
}

static void mem_text(char *b, size_t cap, const gw_device *d, double *frac)
{
    const gw_sample *s = &d->sample;
    *frac = NAN;
    if (gpu_alive(d) && gw_sample_has(s, GW_METRIC_MEM_USED) &&
        gw_sample_has(s, GW_METRIC_MEM_TOTAL) && s->mem_total) {
        snprintf(b, cap, "%.0f/%.0fMiB", (double)s->mem_used / MIB, (double)s->mem_total / MIB);
        *frac = (double)s->mem_used / (double)s->mem_total;
    } else {
        gw__strlcpy(b, "N/A", cap);
    }
}

/* "38C/87C 35W/450W" with N/A for what is unknown. */
static void temp_power_text(char *b, size_t cap, const gw_device *d)
{
    const gw_sample *s = &d->sample;
    bool ok = gpu_alive(d);
    char t[24] = "N/A", sl[24] = "N/A", p[24] = "N/A", l[24] = "N/A";
    if (ok && gw_sample_has(s, GW_METRIC_TEMP))
        snprintf(t, sizeof t, "%.0fC", s->temp_mc / 1000.0);
    if (gw_info_has(&d->info, GW_INFO_TEMP_SLOWDOWN))
        snprintf(sl, sizeof sl, "%.0fC", d->info.temp_slowdown_mc / 1000.0);
    if (ok && gw_sample_has(s, GW_METRIC_POWER))
        snprintf(p, sizeof p, "%.0fW", s->power_mw / 1000.0);
    if (ok && gw_sample_has(s, GW_METRIC_POWER_LIMIT))
        snprintf(l, sizeof l, "%.0fW", s->power_limit_mw / 1000.0);
    snprintf(b, cap, "%s/%s %s/%s", t, sl, p, l);
}

/* "ok", "LOST 12s", "STALE 3.1s", "ERROR". */
static void state_text(const gw__top_caps *k, char *b, size_t cap, const gw__top_gpu *g, int *attr)
{
    const gw_device *d = g->dev;
    *attr = 0;
    if (d->state == GW_DEVICE_OK && (g->age_s < 0 || g->age_s < 5)) {
        gw__strlcpy(b, "ok", cap);
        return;
    }
    const char *name = d->state == GW_DEVICE_OK ? "old" : d->state == GW_DEVICE_LOST ? "LOST"
                       : d->state == GW_DEVICE_STALE                                ? "STALE"
                                                                                    : "ERROR";
    if (g->age_s >= 0)
        snprintf(b, cap, "%s %.0fs", name, g->age_s);
    else
        gw__strlcpy(b, name, cap);
    *attr = A_BOLD | (k->colors ? COLOR_PAIR(PAIR_CRIT) : A_REVERSE);
}

/* "P8 fan 30% SM 210MHz MEM 405MHz" (known parts only). */
static void detail_text(char *b, size_t cap, const gw_device *d)
{
    const gw_sample *s = &d->sample;
    gw_strbuf sb;
    gw__strbuf_init(&sb, cap);
    if (gpu_alive(d)) {
        if (gw_sample_has(s, GW_METRIC_PSTATE))
            gw__strbuf_printf(&sb, "P%u ", s->pstate);
        if (gw_sample_has(s, GW_METRIC_FAN))
            gw__strbuf_printf(&sb, "fan %.0f%% ", s->fan_pct);
        if (gw_sample_has(s, GW_METRIC_CLOCK_SM))
            gw__strbuf_printf(&sb, "SM %uMHz ", s->clock_sm_mhz);
        if (gw_sample_has(s, GW_METRIC_CLOCK_MEM))
            gw__strbuf_printf(&sb, "MEM %uMHz ", s->clock_mem_mhz);
    }
    gw__strlcpy(b, sb.data && !sb.failed ? sb.data : "", cap);
    gw__strbuf_release(&sb);
}

/* One compact line: "0 NAME [util] [mem] T/S P/L state". */
static void draw_gpu_compact(const gw__top_caps *k, int y, const gw__top_gpu *g)
{
    char u[24], mm[48], tp[64], st[32], idx[8];
    double uf, mf;
    int sattr;
    util_text(u, sizeof u, g->dev, &uf);
    mem_text(mm, sizeof mm, g->dev, &mf);
    temp_power_text(tp, sizeof tp, g->dev);
    state_text(k, st, sizeof st, g, &sattr);
    snprintf(idx, sizeof idx, "%2u ", g->dev->info.index);
    int W = COLS, x = 0;
    attron(A_BOLD);
    x += put(y, x, W, idx);
    attroff(A_BOLD);
    int name_w = W >= 120 ? 24 : W >= 100 ? 18 : 12;
    const char *name = g->name; /* the vendor word wastes a narrow column */
    if (name_w < 24 && strncmp(name, "NVIDIA ", 7) == 0)
        name += 7;
    put(y, x, name_w, name);
    x += name_w + 1;
    int right = (int)strlen(tp) + (int)strlen(st) + 3;
    int bars = W - x - right;
    int uw = bars / 3, mw = bars - uw - 1;
    if (uw >= 6) {
        bar(k, y, x, uw, uf, u);
        bar(k, y, x + uw + 1, mw, mf, mm);
        x += bars + 1;
    }
    x += put(y, x, W - x, tp) + 1;
    attron(sattr);
    put(y, x, W - x, st);
    attroff(sattr);
}

/* Full block: name line, bars line, then chart rows. Returns rows used. */
static int draw_gpu_full(const gw__top_caps *k, int y, const gw__top_gpu *g, int chart_h)
{
    char u[24], mm[48], tp[64], st[32], det[96], head[160];
    double uf, mf;
    int sattr, W = COLS;
    util_text(u, sizeof u, g->dev, &uf);
    mem_text(mm, sizeof mm, g->dev, &mf);
    temp_power_text(tp, sizeof tp, g->dev);
    state_text(k, st, sizeof st, g, &sattr);
    detail_text(det, sizeof det, g->dev);
    snprintf(head, sizeof head, "GPU %u  ", g->dev->info.index);
    attron(A_BOLD | color(k, PAIR_HEAD));
    int x = put(y, 0, W, head);
    x += put(y, x, W - x, g->name);
    attroff(A_BOLD | color(k, PAIR_HEAD));
    x += 2;
    attron(sattr);
    x += put(y, x, W - x, st) + 2;
    attroff(sattr);
    put(y, x, W - x, det);
    x = put(y + 1, 0, W, " UTL");
    int right = (int)strlen(tp) + 2;
    int bars = W - x - 5 - right;
    int uw = bars / 3, mw = bars - uw;
    bar(k, y + 1, x, uw, uf, u);
    x += uw + 1;
    x += put(y + 1, x, 4, "MEM");
    bar(k, y + 1, x, mw, mf, mm);
    put(y + 1, x + mw + 1, W, tp);
    if (!g->util_hist || !g->mem_hist || !gpu_alive(g->dev))
        return 2;
    size_t n = g->n_hist, cw = gw__top_chart_points(W);
    if (n > cw)
        n = cw; /* the screen shrank since the model was built */
    for (int r = 0; r < chart_h; r++) {
        int row = y + 2 + r, top = chart_h - 1 - r;
        put(row, 0, 6, r == 0 ? " util" : "");
        chart_row(k, row, 6, g->util_hist + (g->n_hist - n), n, top, chart_h);
        put(row, 7 + (int)n, 6, r == 0 ? " mem" : "");
        chart_row(k, row, 13 + (int)n, g->mem_hist + (g->n_hist - n), n, top, chart_h);
    }
    return 2 + chart_h;
}

/* ------------------------------------------------------------ sections */

static void draw_title(const gw__top_caps *k, const gw__top_model *m, const gw__top_ui *ui)
{
    char line[320], when[16] = "";
    time_t t = (time_t)(m->now_ns / 1000000000LL);
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(when, sizeof when, "%H:%M:%S", &tm);
    const char *host = m->snap && m->snap->host.hostname[0] ? m->snap->host.hostname : "";
    snprintf(line, sizeof line, "gpuwatch top  %s  %s  %zu GPU%s  %s  every %.1fs  sort %s%s%s%s",
             host, when, m->n_gpus, m->n_gpus == 1 ? "" : "s", ui->source ? ui->source : "",
             ui->interval_ms / 1000.0, gw__top_column_name(ui->view->sort),
             ui->view->reverse ? " (rev)" : "", ui->view->filter[0] ? "  filter: " : "",
             ui->view->filter);
    char safe[320];
    gw__top_sanitize(safe, sizeof safe, line, !k->utf8);
    attron(A_REVERSE);
    move(0, 0);
    for (int i = 0; i < COLS; i++)
        addch(' ');
    put(0, 0, COLS, safe);
    attroff(A_REVERSE);
}

/* The newest warning/critical event of the last minute, if any. */
static const gw__event *banner_event(const gw__top_model *m)
{
    for (size_t i = m->n_events; i-- > 0;) {
        const gw__event *e = &m->events[i];
        if (m->now_ns - e->time_ns > 60LL * 1000000000LL)
            break;
        if (e->severity >= GW__SEV_WARNING)
            return e;
    }
    return NULL;
}

static void draw_banner(const gw__top_caps *k, int y, const gw__event *e)
{
    char line[480];
    snprintf(line, sizeof line, " %s: %s ",
             e->severity == GW__SEV_CRITICAL ? "CRITICAL" : "WARNING", e->message);
    char safe[480];
    gw__top_sanitize(safe, sizeof safe, line, !k->utf8);
    full_line(y, safe, A_BOLD | (k->colors ? COLOR_PAIR(PAIR_BANNER) : A_REVERSE));
}

static void fmt_duration(char *b, size_t cap, double s)
{
    if (s < 0) {
        gw__strlcpy(b, "?", cap);
        return;
    }
    long v = (long)(s + 0.5);
    if (v >= 3600)
        snprintf(b, cap, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else
        snprintf(b, cap, "%ld:%02ld", v / 60, v % 60);
}

/* "job@gpu [####    ] 45% 450/1000 steps 12.3/s ETA 0:45 message" */
static void draw_progress(const gw__top_caps *k, int y, const gw_progress *p)
{
    char head[200], tail[400], rate[32] = "?/s", eta[24], frac[16] = "";
    snprintf(head, sizeof head, "%.40s@%.20s ", p->job, p->gpu);
    double r = gw_progress_rate(p), e = gw_progress_eta(p);
    if (r >= 0)
        snprintf(rate, sizeof rate, "%.1f/s", r);
    fmt_duration(eta, sizeof eta, e);
    double f = p->total ? (double)p->done / (double)p->total : NAN;
    if (p->total)
        snprintf(frac, sizeof frac, "%.0f%%", 100.0 * f);
    char total[24] = "?";
    if (p->total)
        snprintf(total, sizeof total, "%llu", (unsigned long long)p->total);
    snprintf(tail, sizeof tail, " %llu/%s %s %s ETA %s %s", (unsigned long long)p->done, total,
             p->unit, rate, eta, p->message);
    char safe[400];
    int x = put(y, 0, COLS, head);
    int bw = COLS / 4 < 10 ? 10 : COLS / 4;
    bar(k, y, x, bw, f, frac);
    gw__top_sanitize(safe, sizeof safe, tail, !k->utf8);
    put(y, x + bw, COLS - x - bw, safe);
}

static const int col_width[GW__TOP_COL_COUNT] = {8, 9, 3, 8, 4, 5, 8, 24, 0};

static void proc_cells(const gw__top_caps *k, const gw__top_proc *r, char cells[][64])
{
    char b[32];
    snprintf(cells[GW__TOP_COL_PID], 64, "%u", r->pid);
    gw__top_sanitize(cells[GW__TOP_COL_USER], 64, r->user, !k->utf8);
    snprintf(cells[GW__TOP_COL_GPU], 64, "%u", r->gpu);
    snprintf(cells[GW__TOP_COL_GPU_MEM], 64, "%s",
             r->has_gpu_mem ? gw__top_bytes(b, sizeof b, r->gpu_mem) : "N/A");
    if (r->has_sm)
        snprintf(cells[GW__TOP_COL_SM], 64, "%.0f", r->sm);
    else
        gw__strlcpy(cells[GW__TOP_COL_SM], "N/A", 64);
    if (r->has_cpu)
        snprintf(cells[GW__TOP_COL_CPU], 64, "%.1f", r->cpu);
    else
        gw__strlcpy(cells[GW__TOP_COL_CPU], "N/A", 64);
    snprintf(cells[GW__TOP_COL_HOST_MEM], 64, "%s",
             r->has_host_mem ? gw__top_bytes(b, sizeof b, r->host_mem) : "N/A");
    gw__top_sanitize(cells[GW__TOP_COL_MODEL], 64, r->model, !k->utf8);
    cells[GW__TOP_COL_COMMAND][0] = '\0';
}

/* One table line from cells (the command drawn separately, it is long):
 * padded into one buffer and written with one put. */
static void table_line(const gw__top_caps *k, int y, char cells[][64], const char *command)
{
    char line[1024];
    size_t at = 0;
    for (int c = 0; c < GW__TOP_COL_COUNT - 1; c++) {
        size_t w = (size_t)col_width[c];
        size_t len = strnlen(cells[c], w);
        bool left = c == GW__TOP_COL_USER || c == GW__TOP_COL_MODEL;
        if (!left) {
            memset(line + at, ' ', w - len);
            at += w - len;
        }
        memcpy(line + at, cells[c], len);
        at += len;
        if (left) {
            memset(line + at, ' ', w - len);
            at += w - len;
        }
        line[at++] = ' ';
    }
    gw__top_sanitize(line + at, sizeof line - at, command, !k->utf8);
    put(y, 0, COLS, line);
}

static void draw_table(const gw__top_caps *k, int y, int rows, const gw__top_model *m,
                       gw__top_ui *ui)
{
    char cells[GW__TOP_COL_COUNT][64];
    for (int c = 0; c < GW__TOP_COL_COUNT; c++)
        snprintf(cells[c], 64, "%s%s", gw__top_column_name((gw__top_column)c),
                 c == (int)ui->view->sort ? (ui->view->reverse ? "^" : "*") : "");
    attron(A_BOLD | A_UNDERLINE | color(k, PAIR_HEAD));
    move(y, 0);
    for (int i = 0; i < COLS; i++)
        addch(' ');
    table_line(k, y, cells, cells[GW__TOP_COL_COMMAND]);
    attroff(A_BOLD | A_UNDERLINE | color(k, PAIR_HEAD));
    long n = (long)m->n_procs;
    if (ui->selected >= n)
        ui->selected = n ? n - 1 : 0;
    if (ui->selected < ui->top)
        ui->top = ui->selected;
    if (rows > 1 && ui->selected >= ui->top + rows - 1)
        ui->top = ui->selected - (rows - 2);
    if (ui->top < 0)
        ui->top = 0;
    if (n == 0)
        put(y + 1, 2, COLS, m->n_procs_total ? "no process matches the filter"
                                             : "no processes on any GPU");
    for (long i = ui->top; i < n && (int)(i - ui->top) < rows - 1; i++) {
        int row = y + 1 + (int)(i - ui->top);
        proc_cells(k, &m->procs[i], cells);
        if (i == ui->selected)
            attron(A_REVERSE);
        if (i == ui->selected) {
            move(row, 0);
            for (int c = 0; c < COLS; c++)
                addch(' ');
        }
        table_line(k, row, cells, m->procs[i].command);
        attroff(A_REVERSE);
    }
}

static void draw_log(const gw__top_caps *k, int y, int rows, const gw__top_model *m)
{
    attron(A_BOLD | color(k, PAIR_HEAD));
    put(y, 0, COLS, "Events");
    attroff(A_BOLD | color(k, PAIR_HEAD));
    if (m->n_events == 0)
        put(y, 8, COLS, "(none yet)");
    size_t shown = (size_t)(rows - 1);
    size_t first = m->n_events > shown ? m->n_events - shown : 0;
    for (size_t i = first; i < m->n_events; i++) {
        const gw__event *e = &m->events[i];
        char when[16] = "", line[480], safe[480];
        time_t t = (time_t)(e->time_ns / 1000000000LL);
        struct tm tm;
        if (localtime_r(&t, &tm))
            strftime(when, sizeof when, "%H:%M:%S", &tm);
        snprintf(line, sizeof line, "%s %-8s %s", when, gw__event_severity_name(e->severity),
                 e->message);
        gw__top_sanitize(safe, sizeof safe, line, !k->utf8);
        int attr = e->severity == GW__SEV_CRITICAL  ? color(k, PAIR_CRIT) | (int)A_BOLD
                   : e->severity == GW__SEV_WARNING ? color(k, PAIR_WARN)
                                                    : 0;
        attron(attr);
        put(y + 1 + (int)(i - first), 0, COLS, safe);
        attroff(attr);
    }
}

static void draw_footer(const gw__top_caps *k, const gw__top_ui *ui)
{
    int y = LINES - 1;
    char line[320], safe[320];
    if (ui->mode == GW__TOP_MODE_FILTER)
        snprintf(line, sizeof line, "Filter: %s_   (Enter apply, Esc clear)",
                 ui->filter_edit ? ui->filter_edit : "");
    else if (ui->mode == GW__TOP_MODE_CONFIRM)
        snprintf(line, sizeof line, "%s [y/N]", ui->prompt ? ui->prompt : "?");
    else if (ui->status && ui->status[0])
        snprintf(line, sizeof line, "%s", ui->status);
    else
        snprintf(line, sizeof line,
                 "F1/? help  F6/s sort  I invert  F4// filter  F9/k kill  q quit");
    gw__top_sanitize(safe, sizeof safe, line, !k->utf8);
    full_line(y, safe, ui->mode == GW__TOP_MODE_CONFIRM ? A_REVERSE | A_BOLD : A_REVERSE);
}

static void draw_help(void)
{
    static const char *const help_text[] = {
        "gpuwatch top - keys",
        "",
        "Up/Down PgUp/PgDn Home/End  select a process (mouse: click, wheel)",
        "F6 s >   sort by the next column     <  previous column",
        "I        invert the sort order",
        "F4 /     filter processes (pid, user or command; Esc clears)",
        "F9 k     signal the selected process: SIGTERM, then SIGKILL",
        "         (asks first; only processes you may signal)",
        "Ctrl-L   redraw",
        "F1 ? h   this help (any key closes it)",
        "F10 q    quit",
        "",
        "GPU line: utilisation, memory used/total, temperature/slowdown,",
        "power/limit, P-state, fan, clocks, state (LOST/STALE with age).",
    };
    int n = (int)(sizeof help_text / sizeof help_text[0]);
    int w = 72 < COLS - 2 ? 72 : COLS - 2;
    int y0 = (LINES - n - 2) / 2 < 1 ? 1 : (LINES - n - 2) / 2;
    int x0 = (COLS - w) / 2 < 0 ? 0 : (COLS - w) / 2;
    for (int i = 0; i < n + 2 && y0 + i < LINES - 1; i++) {
        move(y0 + i, x0);
        for (int c = 0; c < w && x0 + c < COLS; c++)
            addch(i == 0 || i == n + 1 ? '-' : c == 0 || c == w - 1 ? '|' : ' ');
        if (i > 0 && i <= n) {
            if (i == 1)
                attron(A_BOLD);
            put(y0 + i, x0 + 2, w - 4, help_text[i - 1]);
            attroff(A_BOLD);
        }
    }
}

/* Rows of chart per full GPU block, or -1 when the GPUs must be compact. */
static int chart_rows(size_t n_gpus, int avail)
{
    if (n_gpus == 0)
        return 0;
    if (n_gpus >= GW__TOP_COMPACT_GPUS || avail < (int)n_gpus * 2)
        return -1;
    int h = avail / (int)n_gpus - 2;
    return h < 0 ? 0 : h > 4 ? 4 : h;
}

void gw__top_draw(const gw__top_model *m, gw__top_ui *ui, const gw__top_caps *caps,
                  gw__top_layout *out)
{
    const gw__top_caps *k = caps;
    erase();
    int H = LINES, y = 1;
    draw_title(k, m, ui);
    const gw__event *ban = banner_event(m);
    if (ban && H >= 6)
        draw_banner(k, y++, ban);
    size_t n_prog = m->n_progress;
    int log_rows = H >= 30 ? 5 : H >= 22 ? 3 : 0;
    int table_min = H >= 20 ? 6 : 2;
    if ((int)n_prog > (H - y - 1 - table_min - log_rows) / 3)
        n_prog = (size_t)((H - y - 1 - table_min - log_rows) / 3 > 0
                              ? (H - y - 1 - table_min - log_rows) / 3
                              : 0);
    int avail = H - y - 1 - table_min - log_rows - (int)n_prog;
    int ch = chart_rows(m->n_gpus, avail / 2 > 0 ? avail - avail / 3 : avail);
    out->compact = ch < 0;
    for (size_t i = 0; i < m->n_gpus && y < H - 1; i++) {
        if (out->compact) {
            draw_gpu_compact(k, y++, &m->gpus[i]);
        } else {
            int used = draw_gpu_full(k, y, &m->gpus[i], ch);
            y += used;
        }
    }
    for (size_t i = 0; i < n_prog && y < H - 1; i++)
        draw_progress(k, y++, &m->progress[i]);
    int table_rows = H - 1 - y - log_rows;
    if (table_rows < 2) {
        log_rows = 0;
        table_rows = H - 1 - y;
    }
    if (table_rows >= 1)
        draw_table(k, y, table_rows, m, ui);
    out->table_y = y + 1;
    out->table_rows = table_rows > 1 ? table_rows - 1 : 0;
    if (log_rows > 0)
        draw_log(k, H - 1 - log_rows, log_rows, m);
    draw_footer(k, ui);
    if (ui->mode == GW__TOP_MODE_HELP)
        draw_help();
    refresh();
}
