/*
 * cli-build.h - `berth build` and `berth builder` (cli/build.c, cli/build-output.c).
 */
#ifndef BERTH_CLI_CLI_BUILD_H
#define BERTH_CLI_CLI_BUILD_H

#include "cli/cli.h"

int cli_build(int argc, char **argv);

/* A build for another verb (berth apply builds a stack's images). NULL-terminated lists of
 * "K=V" (args: a "K" alone takes K from the environment), cache-from images and tags. */
struct cli_build_spec {
	const char *context;    /* a directory */
	const char *dockerfile; /* NULL: CONTEXT/Dockerfile; else relative to the current directory */
	const char *target;
	char **args, **labels, **cache_from, **tags;
};

/* Build on the daemon (DOCKER_HOST or the default socket) without progress output; *ret_id
 * the image ID. 0, or 1 with the daemon's or the build's error printed. */
int cli_build_image(const struct cli_build_spec *spec, char **ret_id);
int cli_builder(int argc, char **argv);

/* --output type=docker|oci|local,dest=PATH of a built image (build-output.c). 0 or 1 (error printed). */
int cli_build_output(struct cli *cli, const char *spec, const char *image_id);

#endif
