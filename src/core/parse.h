/* parse.h — the grammar of what people type: command-line options and the
 * numbers and sizes in their values (gw__ tier, shared by the CLI, the
 * placement request, the daemon's config and its placement API).
 *
 * Owns: one option scanner over a command's table(s) of options, so every
 * command accepts `--opt=value` and `--opt value` alike; one whole-number
 * parser, one decimal parser and one size grammar, all strict.
 *
 * Invariants:
 *  1. The number parsers read decimal text only, without strtod/strtoull:
 *     no locale, no sign on a whole number, no hex, no exponent, no "nan"
 *     or "inf", no leading or trailing space or junk. Overflow is refused,
 *     never wrapped or saturated.
 *  2. On failure they return GW_EINVAL with err->message holding the reason
 *     only ("is not a size (...)", "is out of range 1..600000"), starting
 *     with the value in quotes; the caller prefixes the option's name. *out
 *     is written only on success.
 *  3. The scanner never prints and never owns anything: values are pointers
 *     into argv.
 */
#ifndef GW_CORE_PARSE_H
#define GW_CORE_PARSE_H

#include "core/util.h"

/* ------------------------------------------------------------- numbers */

/* A whole number lo..hi: DIGITS only ("0", "4096"). */
int gw__parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out, gw_error *err);

/* A decimal lo..hi: [-]DIGITS[.DIGITS] or [-].DIGITS ("-5", "83.5").
 * Finite by construction; at most 18 significant digits are kept. */
int gw__parse_decimal(const char *s, double lo, double hi, double *out, gw_error *err);

/* A byte size: DIGITS[.DIGITS][ ]UNIT, UNIT (any case) one of B (or
 * nothing), K KiB M MiB G GiB T TiB (binary: G = GiB) and KB MB GB TB
 * (decimal). A byte count ("1000", "12B") is whole; a fraction of a larger
 * unit is rounded down to a byte. "24GiB", "512MiB", "1.5G", "10GB". */
int gw__parse_size(const char *s, uint64_t *out, gw_error *err);

/* The value of the first word "FLAG VALUE" or "FLAG=VALUE" of a command
 * line whose arguments are joined by spaces (gw_process.cmdline): *len
 * bytes at the returned pointer (inside cmdline); NULL when absent or
 * empty. */
const char *gw__cmdline_flag(const char *cmdline, const char *flag, size_t *len);

/* An RFC 3339 time ("2026-12-03T12:24:29.696Z", "...T14:38:31.837-07:00",
 * fraction optional) as CLOCK_REALTIME ns. False for anything else (a
 * missing offset included) and for years outside 1970..2261. */
bool gw__parse_rfc3339(const char *s, int64_t *ns);

/* ------------------------------------------------------------- options */

/* One option of a command. Tables end with an entry whose name is NULL. */
typedef struct gw_opt {
    const char *name;  /* "--listen" */
    const char *alias; /* another spelling ("-c") or NULL */
    const char *value; /* what its value is ("HOST:PORT"); NULL: takes none */
    int id;            /* > 0, unique across the tables scanned together */
} gw_opt;

enum {
    GW_OPT_END = 0,           /* no more arguments (or "--" with stop_at_dashdash) */
    GW_OPT_POSITIONAL = -1,   /* value is an argument that is not an option */
    GW_OPT_ERROR = GW_EINVAL, /* err says what: unknown, missing value, stray value */
};

/* A scan over argv[1..argc). Fill argc, argv, tables (NULL-terminated list
 * of tables) and stop_at_dashdash; i starts at 1 (argv[0] is the command).
 * After each option: opt is its table entry, value its value (NULL for an
 * option without one), written either as "--opt=value" or "--opt value";
 * "-" is positional. "--" ends the options: with stop_at_dashdash the scan
 * ends there (i is then the index after "--", dashdash true), else every
 * later argument is positional. */
typedef struct gw_opt_scan {
    int argc;
    char **argv;
    const gw_opt *const *tables;
    bool stop_at_dashdash;
    int i;
    bool dashdash;
    bool only_positional; /* after "--" without stop_at_dashdash */
    const gw_opt *opt;
    const char *value;
} gw_opt_scan;

/* The next option's id (> 0), GW_OPT_POSITIONAL, GW_OPT_END, or
 * GW_OPT_ERROR with err naming the argument. */
int gw__opt_next(gw_opt_scan *s, gw_error *err);

#endif
