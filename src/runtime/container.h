/*
 * container.h - internals shared by the files of the runtime (not public).
 *
 * The container init is a clone3() of the calling process (no exec of a
 * helper). Parent and child talk over a SOCK_SEQPACKET socketpair with the
 * small messages below; the child reports any failure as MSG_ERROR with the
 * rendered error chain before it exits, so the caller gets one precise error.
 *
 *   parent                         child (new namespaces)
 *   clone3(all CLONE_NEW* flags)
 *   uid/gid maps, cgroup procs
 *   MSG_GO  ------------------->   setns joins, cgroupns, hostname,
 *                                  mounts in the rootfs
 *           <-------------------   MSG_HOOKS (only when hooks exist)
 *   prestart/createRuntime hooks
 *   MSG_HOOKS_DONE  ----------->   createContainer hooks, pivot_root,
 *                                  masked/readonly paths, sysctl, console,
 *                                  rlimits, executable lookup
 *           <-------------------   MSG_READY
 *   state.json, pid file           waits: exec fifo (create) or MSG_START (run)
 *                                  startContainer hooks, user, caps,
 *                                  seccomp, close fds, execve
 */
#ifndef BERTH_RUNTIME_CONTAINER_H
#define BERTH_RUNTIME_CONTAINER_H

#include <sys/types.h>

#include "common/strbuf.h"
#include "runtime/runtime.h"

enum sync_msg_type {
	MSG_GO = 1,
	MSG_HOOKS,
	MSG_HOOKS_DONE,
	MSG_READY,
	MSG_START,
	MSG_ERROR,
};

#define SYNC_MSG_TEXT 65536
struct sync_msg {
	int type;
	int code; /* positive errno for MSG_ERROR */
	char text[SYNC_MSG_TEXT];
};

int runtime_sync_send(int fd, int type, int code, const char *text);
/* Receive one message; -EPIPE when the peer went away. */
int runtime_sync_recv(int fd, struct sync_msg *m);
/* Child: send err as MSG_ERROR. */
void runtime_sync_send_error(int fd, const struct berth_error *err, int code);

/* Everything the container side needs, prepared by the parent before clone. */
struct init_config {
	const struct runtime_spec *spec;
	const struct runtime_process *process; /* spec->process or the exec process */
	int sync_fd;
	int fifo_fd;    /* exec fifo opened O_RDWR before pivot (create), else -1 */
	int console_fd; /* connected console socket, or -1 */
	int stdio[3];   /* -1: keep */
	const int *preserve_fds;
	size_t n_preserve_fds;
	bool no_pivot, no_new_keyring;
	bool exec;               /* runtime_exec: join namespaces, no rootfs setup */
	int join_pidfd;          /* exec: pidfd of the container init */
	int join_flags;          /* exec: CLONE_NEW* flags to join */
	bool wait_start_msg;     /* run: wait for MSG_START instead of the fifo */
	bool userns;             /* new user namespace created */
	int parent_joined;       /* CLONE_NEW* of namespaces the parent joined around clone3 */
	char *state_json;        /* child: received with MSG_GO, for createContainer/startContainer hooks */
	int cgroup_kind;         /* enum cgroup_kind, for cgroup mounts */
	const char *cgroup_path; /* hierarchy-relative, NULL: none */
	int cap_last;            /* highest capability number the kernel knows */
	struct sock_fprog *seccomp_prog; /* prepared BPF, or NULL */
	unsigned seccomp_flags;
	bool timings;
};

/* Child entry after clone3: never returns. */
_Noreturn void runtime_init_main(struct init_config *c);

/* mounts.c: the container's mount namespace, run in the child before/after pivot. */
int runtime_rootfs_prepare(const struct init_config *c, struct berth_error **err);
int runtime_rootfs_pivot(const struct init_config *c, struct berth_error **err);
int runtime_rootfs_finish(const struct init_config *c, struct berth_error **err);

/* seccomp.c: compile the profile to BPF in the parent (libseccomp). */
/* cache_dir: where compiled programs are kept (created on demand), NULL: always compile. */
int runtime_seccomp_compile(const struct runtime_seccomp *sc, const char *cache_dir, struct sock_fprog **ret,
			    struct berth_error **err);
void runtime_seccomp_prog_free(struct sock_fprog *p);
/* In the child: install (seccomp(2) with flags, falling back to prctl). */
int runtime_seccomp_install(const struct sock_fprog *prog, unsigned flags);

/* hooks.c */
int runtime_hooks_run(const struct runtime_hooks *hooks, const char *kind, const char *state_json,
		      struct berth_error **err);
/* Every hook runs; a failure is logged as a warning (runtime-spec: poststart, poststop). */
void runtime_hooks_run_warn(const struct runtime_hooks *hooks, const char *kind, const char *state_json);

/* terminal.c */
int runtime_console_socket_connect(const char *path, struct berth_error **err);
/* Child: allocate a pty in the container's devpts, send the master, make the slave stdio. */
int runtime_console_setup(int console_fd, const struct runtime_process *p, bool mount_console,
			  struct berth_error **err);
/* Receive a pty master sent with SCM_RIGHTS on sock. */
int runtime_console_recv_fd(int sock, int *ret_fd, struct berth_error **err);

/* timing of phases (ctx->timings) */
void runtime_timing_mark(bool on, const char *phase);

/* state.c */
struct container_state {
	struct runtime_state st;
	unsigned long long pid_start; /* /proc/<pid>/stat starttime, guards against pid reuse */
	int cgroup_kind;              /* enum cgroup_kind */
	char *cgroup_path;            /* owned, "" when none */
	bool userns;
};
void runtime_container_state_done(struct container_state *s);
char *runtime_state_dir(const struct runtime_ctx *ctx, const char *id);
int runtime_state_save(const struct runtime_ctx *ctx, const struct container_state *s,
		       struct berth_error **err);
int runtime_state_load(const struct runtime_ctx *ctx, const char *id, struct container_state *ret,
		       struct berth_error **err);
/* The container's spec: the copy in the state dir (in-memory specs) or <bundle>/config.json. */
int runtime_state_load_spec(const struct runtime_ctx *ctx, const struct container_state *st,
			    struct runtime_spec **ret, struct berth_error **err);
/* Live status from pid, start time, fifo and freezer. */
enum runtime_status runtime_state_status(const struct runtime_ctx *ctx, const struct container_state *s);
unsigned long long runtime_proc_start_time(pid_t pid);
/* Render state JSON for hooks (status given explicitly). */
char *runtime_state_hook_json(const char *id, enum runtime_status st, pid_t pid, const char *bundle,
			      const json_t *annotations);
int runtime_write_file_at(int dirfd, const char *path, const char *data, size_t len,
			  struct berth_error **err);

#endif
