/* input.c — the key map of `gpuwatch top` (input.h). Uses curses' key
 * constants only; no curses call, so no terminal state is touched here. */
#include "top/input.h"

#include <curses.h>

static gw__top_action prompt_key(int key, gw__top_mode mode, int *ch)
{
    if (mode == GW__TOP_MODE_CONFIRM)
        return key == 'y' || key == 'Y' ? GW__TOP_ACT_ACCEPT
               : key == KEY_RESIZE      ? GW__TOP_ACT_RESIZE
                                        : GW__TOP_ACT_CANCEL;
    switch (key) {
    case 27: return GW__TOP_ACT_CANCEL;
    case '\n':
    case '\r':
    case KEY_ENTER: return GW__TOP_ACT_ACCEPT;
    case KEY_BACKSPACE:
    case 127:
    case 8: return GW__TOP_ACT_BACKSPACE;
    case KEY_RESIZE: return GW__TOP_ACT_RESIZE;
    default:
        if (key >= 0x20 && key < 0x7f) {
            *ch = key;
            return GW__TOP_ACT_TEXT;
        }
        return GW__TOP_ACT_NONE;
    }
}

gw__top_action gw__top_key_action(int key, gw__top_mode mode, int *ch)
{
    if (mode == GW__TOP_MODE_FILTER || mode == GW__TOP_MODE_CONFIRM)
        return prompt_key(key, mode, ch);
    if (mode == GW__TOP_MODE_HELP && key != KEY_RESIZE && key != 'q' && key != 'Q')
        return GW__TOP_ACT_HELP; /* any key leaves the help screen */
    switch (key) {
    case 'q':
    case 'Q':
    case KEY_F(10): return GW__TOP_ACT_QUIT;
    case '?':
    case 'h':
    case KEY_F(1): return GW__TOP_ACT_HELP;
    case KEY_UP: return GW__TOP_ACT_UP;
    case KEY_DOWN: return GW__TOP_ACT_DOWN;
    case KEY_PPAGE: return GW__TOP_ACT_PAGE_UP;
    case KEY_NPAGE: return GW__TOP_ACT_PAGE_DOWN;
    case KEY_HOME: return GW__TOP_ACT_HOME;
    case KEY_END: return GW__TOP_ACT_END;
    case 's':
    case '>':
    case KEY_F(6): return GW__TOP_ACT_SORT_NEXT;
    case '<': return GW__TOP_ACT_SORT_PREV;
    case 'I': return GW__TOP_ACT_SORT_REVERSE;
    case '/':
    case KEY_F(4): return GW__TOP_ACT_FILTER;
    case 'k':
    case KEY_F(9): return GW__TOP_ACT_KILL;
    case 12: return GW__TOP_ACT_REDRAW;
    case KEY_RESIZE: return GW__TOP_ACT_RESIZE;
    case 27: return GW__TOP_ACT_ESCAPE;
    default: return GW__TOP_ACT_NONE;
    }
}

long gw__top_click_row(int y, int table_y, long top, int visible, long n)
{
    if (y < table_y || y >= table_y + visible)
        return -1;
    long row = top + (y - table_y);
    return row < n ? row : -1;
}

long gw__top_move(long selected, gw__top_action action, long n, int page)
{
    if (n <= 0)
        return 0;
    if (page < 1)
        page = 1;
    switch (action) {
    case GW__TOP_ACT_UP: selected--; break;
    case GW__TOP_ACT_DOWN: selected++; break;
    case GW__TOP_ACT_PAGE_UP: selected -= page; break;
    case GW__TOP_ACT_PAGE_DOWN: selected += page; break;
    case GW__TOP_ACT_HOME: selected = 0; break;
    case GW__TOP_ACT_END: selected = n - 1; break;
    default: break;
    }
    return selected < 0 ? 0 : selected >= n ? n - 1 : selected;
}
