/* fit_preset.h — llama-server's models preset INI (router mode:
 * `llama-server --models-preset FILE`), one section per model with the
 * arguments gpuwatch's plan chose for this host (`gpuwatch fit
 * --router-preset`).
 *
 * Owns: the section name of a model file, the INI text of one section
 * from a plan's llama.cpp flags, and the checks that make a name or a
 * value safe in an INI line.
 */
#ifndef GW_CLI_FIT_PRESET_H
#define GW_CLI_FIT_PRESET_H

#include "core/parse.h"
#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>

/* The section name llama-server's router would give path: its file name
 * without ".gguf", into out[cap]. false (out names why) when the name is
 * empty or holds a character an INI section name cannot ('[', ']', '=',
 * ';', '#', a control byte). */
bool gw_fit_preset_name(const char *path, char *out, size_t cap);

/* Appends one section to sb:
 *   ; comment lines (each line of comment, may be NULL)
 *   [name]
 *   model = path
 *   key = value        one per flag of flags ("-c 8192 -ngl 999 -ts 3,1 ..."),
 *                      keys the long names opts gives each short flag, a flag
 *                      without a value as "key = true"
 * false when flags holds a flag opts does not know (sb then unchanged in
 * meaning: the caller discards it). */
bool gw_fit_preset_section(gw_strbuf *sb, const char *name, const char *path, const char *flags,
                           const char *comment, const gw_opt *opts);

#endif
