/*
 * logfile.h - the log writer used by the shim: docker's json-file format or
 * its `local` format (protobuf frames, see loglocal.h), with rotation at
 * max_size into <path>.1 ... <path>.<max_file-1> (optionally gzipped to
 * <path>.N.gz by a short-lived child). Not thread-safe; one writer per file.
 */
#ifndef BERTH_SHIM_LOGFILE_H
#define BERTH_SHIM_LOGFILE_H

#include <sys/types.h>

#include "common/strbuf.h"

/* Docker splits lines longer than 16 KiB into several records. */
#define LOGFILE_MAX_LINE (16 * 1024)

struct logfile {
	int fd;
	char *path;             /* NULL: the "none" driver (everything dropped) */
	int64_t size, max_size; /* max_size 0: never rotate */
	int max_file;
	struct strbuf partial[2]; /* stdout, stderr */
	bool local, compress;     /* local format; gzip rotated files */
	pid_t compress_pid;       /* running gzip child, 0: none */
	char *attrs;              /* json-file: every record's "attrs" (a JSON object's text), NULL: none */
};

void shim_logfile_init(struct logfile *l, const char *path, int64_t max_size, int max_file);
/* Choose the local format and/or gzip of rotated files (call before shim_logfile_open). */
void shim_logfile_set_format(struct logfile *l, bool local, bool compress);
int shim_logfile_open(struct logfile *l);
/* The shim reaped pid: forget it if it was our gzip child. */
void shim_logfile_child_exited(struct logfile *l, pid_t pid);
/* stream: 1 stdout, 2 stderr. */
void shim_logfile_write(struct logfile *l, int stream, const char *data, size_t len);
void shim_logfile_flush(struct logfile *l, int stream);
void shim_logfile_done(struct logfile *l);

#endif
