/* cluster_opts.h — the cluster options `report --cluster` and `place
 * --cluster` share (one table, one help text, one loader), and running
 * one poll of the cluster for a command.
 *
 * Owns: the option table from GW_CLI_ID_CLUSTER, the peer token read from
 * --peer-token-file / $GPUWATCH_PEER_TOKEN, the defaults ($GPUWATCH_PEERS),
 * and loading libcurl for the poll. */
#ifndef GW_CLI_CLUSTER_OPTS_H
#define GW_CLI_CLUSTER_OPTS_H

#include "cli/cli.h"
#include "fleet/cluster.h"

#define GW_CLI_ID_CLUSTER 3000

typedef struct gw_cli_cluster {
    bool on;                    /* --cluster */
    gw__cluster_config cfg;     /* strings borrowed from argv / env / token */
    const char *token_file;
    char token[256];
} gw_cli_cluster;

extern const gw_opt gw_cli_cluster_opts[];
extern const char gw_cli_cluster_options_help[];

/* Sets the defaults (2000 ms per peer, the straggler rule on). */
void gw_cli_cluster_init(gw_cli_cluster *c);

/* Applies cluster option id: 1 done, 0 not a cluster option,
 * GW_CLI_EXIT_USAGE after printing a bad value. */
int gw_cli_cluster_apply(const gw_cli_parse *p, int id, gw_cli_cluster *c);

/* After parsing: $GPUWATCH_PEERS when no source was named, the token
 * file read. Prints "gpuwatch CMD: ..." and returns GW_EXIT_USAGE /
 * GW_EXIT_ERROR on a problem, else 0. */
int gw_cli_cluster_finish(gw_cli_cluster *c, const char *cmd);

/* Loads libcurl and polls the cluster once into *cl (caller releases it
 * with gw__cluster_release, even on failure). Prints "gpuwatch CMD: ..."
 * and returns GW_EXIT_ERROR / GW_EXIT_USAGE when it could not poll at all,
 * else 0 (each node's fate is in *cl). */
int gw_cli_cluster_poll(const gw_cli_cluster *c, const char *cmd, gw__cluster *cl);

/* Writes one JSON document (write(j, arg) renders it) and a newline to
 * stdout, pretty when asked. False when it could not be rendered (out of
 * memory); the caller exits GW_EXIT_ERROR. */
bool gw_cli_cluster_print_json(bool pretty, void (*write)(gw_json *j, const void *arg),
                               const void *arg);

#endif
