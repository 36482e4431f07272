/*
 * build.h - the builder module's entry points for front ends. The library
 * API is split by concern: dockerfile.h (parser), shlex.h (expansion),
 * ignore.h (.dockerignore), context.h (build context), plan.h (build plan),
 * executor.h (step loop over a backend).
 */
#ifndef BERTH_BUILD_BUILD_H
#define BERTH_BUILD_BUILD_H

/* `berth build-tool parse|plan|context ...`: JSON views for tests and debugging. */
int build_tool_main(int argc, char **argv);

#endif
