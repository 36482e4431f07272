/*
 * runopts.h - parsers of docker's structured run flags on the client side.
 * Both return 0 and a new JSON object in *ret, or -EINVAL and a message in
 * *errmsg (caller frees; docker's wording).
 */
#ifndef BERTH_CLI_RUNOPTS_H
#define BERTH_CLI_RUNOPTS_H

#include <jansson.h>

#include "common/macro.h"

/* "type=volume,source=v,target=/d,readonly,volume-nocopy,..." -> a HostConfig.Mounts entry. */
int cli_mount_parse(const char *spec, json_t **ret, char **errmsg);
/* "nofile=1024[:2048]" ("unlimited" / -1 allowed) -> {Name, Soft, Hard}. */
int cli_ulimit_parse(const char *spec, json_t **ret, char **errmsg);
/*
 * --restart of run/create/update (a CLI_OPT_CALL callback): "no", "always",
 * "on-failure[:N]", "unless-stopped" -> hostconfig["RestartPolicy"] =
 * {Name, MaximumRetryCount}; -EINVAL with "berth: invalid restart policy" printed.
 */
int cli_opt_restart(void *hostconfig, const char *v);

#endif
