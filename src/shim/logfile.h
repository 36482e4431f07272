/*
 * logfile.h - json-file log writer used by the shim (docker's format and
 * rotation). Not thread-safe; one writer per file.
 */
#ifndef BERTH_SHIM_LOGFILE_H
#define BERTH_SHIM_LOGFILE_H

#include "common/strbuf.h"

/* Docker splits lines longer than 16 KiB into several records. */
#define LOGFILE_MAX_LINE (16 * 1024)

struct logfile {
	int fd;
	char *path;             /* NULL: the "none" driver (everything dropped) */
	int64_t size, max_size; /* max_size 0: never rotate */
	int max_file;
	struct strbuf partial[2]; /* stdout, stderr */
};

void logfile_init(struct logfile *l, const char *path, int64_t max_size, int max_file);
int logfile_open(struct logfile *l);
/* stream: 1 stdout, 2 stderr. */
void logfile_write(struct logfile *l, int stream, const char *data, size_t len);
void logfile_flush(struct logfile *l, int stream);
void logfile_done(struct logfile *l);

#endif
