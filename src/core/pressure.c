/* pressure.c — the memory-pressure level rule (pressure.h). */
#include "core/pressure.h"

int gw__pressure_next(int level, double r, double warn, double critical, double hyst)
{
    if (r >= critical)
        return 2;
    if (r >= warn)
        return level == 2 && r >= critical - hyst ? 2 : 1;
    if (level == 2)
        return r >= critical - hyst ? 2 : r >= warn - hyst ? 1 : 0;
    if (level == 1 && r < warn - hyst)
        return 0;
    return level;
}
