/*
 * dockerfile.h - Dockerfile parser with BuildKit's frontend semantics.
 *
 * build_dockerfile_parse() turns the text into a `struct dockerfile`: parser
 * directives, the ARGs before the first FROM ("meta args") and the stages,
 * each instruction already checked (argument counts, flags, JSON form) and
 * its flags decoded into `struct df_opts`. Nothing is expanded here: words
 * keep their quotes and `$` references; the planner expands them with the
 * right scope (see shlex.h, plan.h).
 *
 * Errors read "Dockerfile:7: unknown instruction: RUNN" (the name passed in,
 * the first line of the instruction, the message). Warnings (ignored syntax
 * directive, empty continuation lines, MAINTAINER, legacy ENV form) are
 * collected in `warnings`, never printed.
 *
 * Ownership: everything hangs off the struct dockerfile and is freed by
 * build_dockerfile_free(). Limits: DF_MAX_SIZE bytes of input, DF_MAX_INSTRUCTIONS.
 */
#ifndef BERTH_BUILD_DOCKERFILE_H
#define BERTH_BUILD_DOCKERFILE_H

#include "common/error.h"

#define DF_MAX_SIZE         (4u << 20)
#define DF_MAX_INSTRUCTIONS 10000
/* Stages reference each other; planning walks those references recursively. */
#define DF_MAX_STAGES       1000

enum df_cmd {
	DF_ADD,
	DF_ARG,
	DF_CMD,
	DF_COPY,
	DF_ENTRYPOINT,
	DF_ENV,
	DF_EXPOSE,
	DF_FROM,
	DF_HEALTHCHECK,
	DF_LABEL,
	DF_MAINTAINER,
	DF_ONBUILD,
	DF_RUN,
	DF_SHELL,
	DF_STOPSIGNAL,
	DF_USER,
	DF_VOLUME,
	DF_WORKDIR,
	_DF_CMD_MAX,
};

/* "RUN", "COPY", ... (upper case). */
const char *build_df_cmd_name(enum df_cmd cmd);

struct df_heredoc {
	char *name;    /* delimiter without quotes */
	char *content; /* body, one "\n" per line; tabs already stripped for <<- */
	bool expand;   /* false when the delimiter was quoted */
	bool chomp;    /* <<- */
	unsigned fd;   /* 3<<EOF; 0 when not given */
};

enum df_mount_type { DF_MOUNT_BIND, DF_MOUNT_CACHE, DF_MOUNT_TMPFS, DF_MOUNT_SECRET, DF_MOUNT_SSH };

/* RUN --mount: the raw option string; the typed values are made by
 * build_df_mount_parse() after expansion (plan.c), because values may hold $VARS. */
struct df_mount {
	enum df_mount_type type;
	char *from, *source, *target, *id, *sharing, *env;
	bool readonly, required;
	int64_t mode, uid, gid, size; /* -1 when not given */
};
const char *build_df_mount_type_name(enum df_mount_type t);
/* Parse one --mount value (CSV "type=cache,target=/x"). Fills *m (caller
 * frees with build_df_mount_done()). Errors name the offending key. */
int build_df_mount_parse(const char *spec, struct df_mount *m, struct berth_error **err);
void build_df_mount_done(struct df_mount *m);

/* Decoded flags; only the fields of the instruction's kind are ever set. */
struct df_opts {
	char *platform; /* FROM */
	/* COPY / ADD */
	char *from, *chown, *chmod, *checksum;
	bool link, parents, keep_git_dir;
	char **exclude;
	/* RUN */
	char **mounts; /* raw --mount values, in order */
	char *network, *security;
	/* HEALTHCHECK (nanoseconds; 0 = inherit default) */
	int64_t interval, timeout, start_period, start_interval;
	int retries;
};

struct df_instr {
	enum df_cmd cmd;
	char *original; /* the logical line, continuations joined */
	int line;       /* first line (1-based) */
	int end_line;   /* last line, heredoc bodies included */
	char **flags;   /* raw "--name=value" words, NULL-terminated */
	char **args;    /* arguments (see below), NULL-terminated, never NULL */
	size_t n_args;
	bool json; /* exec form (JSON array) */
	struct df_heredoc *heredocs;
	size_t n_heredocs;
	struct df_opts opts;
	struct df_instr *trigger; /* ONBUILD: the parsed trigger instruction */
	char *expression;         /* ONBUILD: trigger text as stored in the image */
};
/*
 * args by kind: shell form RUN/CMD/ENTRYPOINT: one string; JSON form: the
 * elements. ENV/LABEL: key, value, key, value... (raw, quotes kept). ARG:
 * "name" or "name=default" words. FROM: base [AS name]. HEALTHCHECK: type,
 * then command like CMD. ONBUILD: trigger command word then its args.
 * Others: the words (or the whole rest for USER/WORKDIR/STOPSIGNAL/MAINTAINER).
 */

struct df_stage {
	char *name;      /* lower case, or NULL */
	char *base;      /* unexpanded */
	char *platform;  /* unexpanded --platform, or NULL */
	size_t from;     /* index of the FROM in dockerfile.instrs */
	size_t first, n; /* instructions after FROM: instrs[first .. first+n) */
};

struct dockerfile {
	char *name;      /* for messages: "Dockerfile" */
	char escape;     /* '\\' or '`' */
	char *syntax;    /* # syntax= value or NULL (ignored) */
	char *check;     /* # check= value or NULL */
	char **warnings; /* NULL-terminated, never NULL */
	struct df_instr *instrs;
	size_t n_instrs;
	size_t n_meta; /* instrs[0 .. n_meta) are the ARGs before the first FROM */
	struct df_stage *stages;
	size_t n_stages;
};

/* Parse `len` bytes of `text`. `name` is used in messages (NULL: "Dockerfile"). */
int build_dockerfile_parse(const char *text, size_t len, const char *name, struct dockerfile **ret,
			   struct berth_error **err);

/*
 * Parse a single instruction line (an ONBUILD trigger stored in an image
 * config) with the default escape character. Used to replay triggers.
 */
int build_dockerfile_parse_trigger(const char *line, struct df_instr **ret, struct berth_error **err);

struct dockerfile *build_dockerfile_free(struct dockerfile *df);
void build_df_instr_done(struct df_instr *in);
struct df_instr *build_df_instr_free(struct df_instr *in);
static inline void dockerfile_freep(struct dockerfile **df)
{
	*df = build_dockerfile_free(*df);
}
#define _cleanup_dockerfile_ _cleanup_(dockerfile_freep)

/* Index of the stage named `name` (case-insensitive) or given as a number;
 * -1 if none. */
ssize_t build_dockerfile_find_stage(const struct dockerfile *df, const char *name);

#endif
