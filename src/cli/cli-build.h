/*
 * cli-build.h - `berth build` and `berth builder` (cli/build.c, cli/build-output.c).
 */
#ifndef BERTH_CLI_CLI_BUILD_H
#define BERTH_CLI_CLI_BUILD_H

#include "cli/cli.h"

int cli_build(int argc, char **argv);
int cli_builder(int argc, char **argv);

/* --output type=docker|oci|local,dest=PATH of a built image (build-output.c). 0 or 1 (error printed). */
int cli_build_output(struct cli *cli, const char *spec, const char *image_id);

#endif
