/* input.h — keys and mouse of `gpuwatch top` turned into actions.
 *
 * Owns: the key map (htop/nvtop habits: arrows, PgUp/PgDn, Home/End, F-keys
 * and letters) and the meaning of a mouse event given the frame's layout.
 * Pure functions of their arguments: no terminal I/O, no state.
 *
 * Invariants:
 *  1. Every key has exactly one action in a mode; unknown keys are
 *     GW__TOP_ACT_NONE, never an error.
 *  2. In the prompt modes (filter text, kill confirmation) letters are the
 *     prompt's: `q` typed into the filter is text, not quit.
 */
#ifndef GW_TOP_INPUT_H
#define GW_TOP_INPUT_H

#include <stdbool.h>

typedef enum gw__top_action {
    GW__TOP_ACT_NONE = 0,
    GW__TOP_ACT_QUIT,
    GW__TOP_ACT_HELP,         /* toggle the help screen */
    GW__TOP_ACT_UP,
    GW__TOP_ACT_DOWN,
    GW__TOP_ACT_PAGE_UP,
    GW__TOP_ACT_PAGE_DOWN,
    GW__TOP_ACT_HOME,
    GW__TOP_ACT_END,
    GW__TOP_ACT_SORT_NEXT,    /* F6 / s / > : next sort column */
    GW__TOP_ACT_SORT_PREV,    /* < */
    GW__TOP_ACT_SORT_REVERSE, /* I (htop: invert) */
    GW__TOP_ACT_FILTER,       /* / or F4: start typing a filter */
    GW__TOP_ACT_KILL,         /* k or F9: ask to signal the selected process */
    GW__TOP_ACT_REDRAW,       /* Ctrl-L */
    GW__TOP_ACT_RESIZE,
    GW__TOP_ACT_ESCAPE,       /* leave help / clear the filter */
    /* prompt modes */
    GW__TOP_ACT_TEXT,         /* *ch is a character to append */
    GW__TOP_ACT_BACKSPACE,
    GW__TOP_ACT_ACCEPT,       /* Enter, or y in a confirmation */
    GW__TOP_ACT_CANCEL,       /* Esc, or anything else in a confirmation */
} gw__top_action;

typedef enum gw__top_mode {
    GW__TOP_MODE_NORMAL = 0,
    GW__TOP_MODE_HELP,
    GW__TOP_MODE_FILTER,
    GW__TOP_MODE_CONFIRM,
} gw__top_mode;

/* The action of key (a curses key code or a character) in mode. For
 * GW__TOP_ACT_TEXT, *ch receives the character. */
gw__top_action gw__top_key_action(int key, gw__top_mode mode, int *ch);

/* A mouse click at row y (0-based screen row) on a table whose first row
 * is at table_y and which shows rows from `top` on, `visible` of them, out
 * of n: the row index clicked, or -1 when the click is not on a row. */
long gw__top_click_row(int y, int table_y, long top, int visible, long n);

/* The selected row after action (UP, DOWN, PAGE_UP, PAGE_DOWN, HOME, END) on n rows with
 * `page` rows visible; clamped to 0..n-1 (0 when n is 0). */
long gw__top_move(long selected, gw__top_action action, long n, int page);

#endif
