/* render.h — the terminal side of `gpuwatch top`: opening the screen,
 * reading keys, and drawing a model at the terminal's current size with its
 * capabilities (UTF-8 or ASCII, no colour / 8 / 256 colours).
 *
 * Owns: every ncurses call and global of the program (render.c is the only
 * file that touches them), the colour pairs, and the layout of a frame.
 *
 * Invariants:
 *  1. Drawing never writes outside the screen, at any size (down to 1x1):
 *     every piece is clipped to the columns and rows left.
 *  2. Without UTF-8 only ASCII reaches the terminal (bars '|', charts
 *     "_.-=#", text sanitized with ascii = true).
 *  3. With colours off (NO_COLOR, --no-color, a terminal without colours)
 *     emphasis uses bold/reverse only.
 *  4. A frame is drawn whole and then shown with one refresh.
 */
#ifndef GW_TOP_RENDER_H
#define GW_TOP_RENDER_H

#include "top/input.h"
#include "top/model.h"

typedef struct gw__top_caps {
    bool utf8;
    int colors; /* 0, 8 or 256 */
} gw__top_caps;

/* What the drawing shows besides the model (the UI state). Borrowed. */
typedef struct gw__top_ui {
    gw__top_mode mode;
    const gw__top_view *view;
    long selected;        /* row of the process table */
    long top;             /* first row shown; updated by gw__top_draw */
    const char *filter_edit; /* text being typed in FILTER mode */
    const char *prompt;   /* the question in CONFIRM mode */
    const char *status;   /* last message ("sent SIGTERM to 123"), "" none */
    const char *source;   /* "local" or the URL */
    unsigned interval_ms;
} gw__top_ui;

/* Where things landed in the last frame (for the mouse and paging). */
typedef struct gw__top_layout {
    int table_y;     /* first process row on screen */
    int table_rows;  /* rows the table shows */
    bool compact;    /* one line per GPU */
} gw__top_layout;

/* Opens the screen on the terminal. no_color forces monochrome (NO_COLOR
 * is checked by the caller). Returns GW_OK, or GW_ENOTSUP when the
 * terminal cannot address the cursor (TERM=dumb, unknown terminal): the
 * caller falls back to plain lines; nothing is left changed then. */
int gw__top_screen_open(bool no_color, gw__top_caps *caps);

/* Restores the terminal. Safe to call when not open. */
void gw__top_screen_close(void);

/* Current size. */
void gw__top_screen_size(int *width, int *height);

/* Waits up to timeout_ms for a key, or for input on fd (>= 0; -1: keys
 * only); returns the key, GW__TOP_KEY_FD when fd is readable first, or -1
 * on timeout. A mouse click returns GW__TOP_KEY_CLICK with *mouse_y set;
 * the wheel returns KEY_UP/KEY_DOWN; a resize KEY_RESIZE. */
#define GW__TOP_KEY_CLICK 0x7fff0001
#define GW__TOP_KEY_FD 0x7fff0002
int gw__top_screen_key(int timeout_ms, int fd, int *mouse_y);

/* From this many GPUs on, each gets one compact line and no charts. */
#define GW__TOP_COMPACT_GPUS 8

/* Points a history chart gets at width (what to ask the model for). */
size_t gw__top_chart_points(int width);

/* Draws m with ui into the whole screen and shows it; fills *out. ui->top
 * is adjusted so the selected row is visible. */
void gw__top_draw(const gw__top_model *m, gw__top_ui *ui, const gw__top_caps *caps,
                  gw__top_layout *out);

#endif
