/* pressure.h — the memory-pressure level rule, one for the daemon's events
 * (sampler/events.c) and the library's watcher (lib/watcher.c).
 *
 * Owns: the transition of a device's level (0 normal, 1 warning, 2
 * critical) from one used/total ratio to the next.
 *
 * Invariants:
 *  1. A level is entered when the ratio reaches its threshold (critical
 *     wins over warning).
 *  2. A level is left only when the ratio falls below its threshold minus
 *     hysteresis; leaving critical lands on warning or normal by the same
 *     rule, so one ratio change is at most one transition.
 */
#ifndef GW_CORE_PRESSURE_H
#define GW_CORE_PRESSURE_H

/* The level after a reading of ratio, given the level before. Pure. */
int gw__pressure_next(int level, double ratio, double warn, double critical, double hysteresis);

#endif
