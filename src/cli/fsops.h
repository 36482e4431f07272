/*
 * fsops.h - private to cli/: the parsers of cp and stats, exposed for tests.
 */
#ifndef BERTH_CLI_FSOPS_H
#define BERTH_CLI_FSOPS_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"

/* Docker's container path stat, from the X-Docker-Container-Path-Stat header. */
struct cli_path_stat {
	char *name, *link_target;
	int64_t size;
	uint32_t mode; /* Go os.FileMode bits */
};
#define CLI_MODE_DIR     (1u << 31)
#define CLI_MODE_SYMLINK (1u << 27)

/* Decode the header value (base64 JSON). -EINVAL with a message on anything malformed. */
int cli_path_stat_parse(const char *value, struct cli_path_stat *ret, struct berth_error **err);
void cli_path_stat_done(struct cli_path_stat *st);

/*
 * Split a cp argument: "CONTAINER:PATH" (*ret_container set) or a local path
 * (*ret_container NULL). Like docker: an argument starting with '/' or '.' is
 * local, as is one without ':'. Both outputs newly allocated.
 */
void cli_cp_split(const char *arg, char **ret_container, char **ret_path);

/*
 * One row of `stats` from a sample (and the previous one, may be NULL: the
 * sample's own precpu is used): Container, ID, Name, CPUPerc, MemUsage,
 * MemLimit, MemPerc, NetIO, BlockIO, PIDs, all strings formatted like docker's.
 */
json_t *cli_stats_row(const json_t *cur, const json_t *prev, bool trunc);

#endif
