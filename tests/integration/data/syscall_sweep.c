/*
 * syscall_sweep.c - built by test_engine_seccomp.py with gcc -static and run
 * inside containers. "sweep": every x86-64 syscall number from 0 to 599, in a
 * child each, with every argument -1 (invalid pointers, fds and flags: the
 * kernel refuses early, nothing happens), then a few argument-filtered calls;
 * one line "NAME VERDICT" each: EPERM, ENOSYS (the call failed so), RAN
 * (anything else: it returned, exited or died by a signal) or BLOCKED (still
 * running after the timeout; pause()). "ptrace": strace's basic moves on a
 * child (TRACEME, SYSCALL stops, GETREGS, PEEKDATA, process_vm_readv).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *probe(long nr, long a0, long a1, long a2)
{
	fflush(stdout);
	pid_t me, pid = fork();
	if (pid == 0) {
		me = getpid();
		long r = syscall(nr, a0, a1, a2, -1L, -1L, -1L);
		int e = errno;
		if (getpid() != me) /* fork, vfork, clone: the new process leaves at once */
			_exit(0);
		_exit(r == -1 && e == EPERM ? 1 : r == -1 && e == ENOSYS ? 2 : 0);
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	struct timespec ts = { 2, 0 };
	int st;
	const char *blocked = NULL;
	/* a blocking call (pause) is killed; not a timed assertion, only how it is classified */
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (sigtimedwait(&set, NULL, &ts) < 0 && errno == EAGAIN) {
			kill(pid, SIGKILL);
			blocked = "BLOCKED";
		}
	}
	if (blocked)
		return blocked;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
		return "EPERM";
	if (WIFEXITED(st) && WEXITSTATUS(st) == 2)
		return "ENOSYS";
	return "RAN";
}

static int sweep(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (long nr = 0; nr < 600; nr++)
		printf("%ld %s\n", nr, probe(nr, -1L, -1L, -1L));
	printf("personality(0x1234) %s\n", probe(SYS_personality, 0x1234, 0, 0));
	printf("personality(0x8) %s\n", probe(SYS_personality, 0x8, 0, 0));
	printf("socket(AF_VSOCK) %s\n", probe(SYS_socket, 40, 1, 0));
	printf("socket(AF_UNIX) %s\n", probe(SYS_socket, 1, 1, 0));
	printf("clone(CLONE_NEWUSER) %s\n", probe(SYS_clone, 0x10000000 | SIGCHLD, 0, 0));
	printf("clone(SIGCHLD) %s\n", probe(SYS_clone, SIGCHLD, 0, 0));
	return 0;
}

static int tracee(void)
{
	if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
		_exit(20);
	raise(SIGSTOP);
	getppid();
	_exit(0);
}

static int trace(void)
{
	static volatile long marker = 0x5eccbeef;
	pid_t pid = fork();
	if (pid == 0)
		return tracee();
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFSTOPPED(st)) {
		printf("traceme failed: status %x\n", st);
		return 1;
	}
	long word = ptrace(PTRACE_PEEKDATA, pid, (void *)&marker, 0);
	long copy = 0;
	struct iovec local = { &copy, sizeof(copy) }, remote = { (void *)&marker, sizeof(marker) };
	ssize_t vm = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	int seen_getppid = 0;
	for (int i = 0; i < 64 && !seen_getppid; i++) {
		if (ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0 || waitpid(pid, &st, 0) < 0 || !WIFSTOPPED(st))
			break;
		struct user_regs_struct regs;
		if (ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0 && regs.orig_rax == SYS_getppid)
			seen_getppid = 1;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	printf("peek %s\nprocess_vm_readv %s\nsyscall-stop %s\n", word == 0x5eccbeef ? "ok" : "failed",
	       vm == sizeof(copy) && copy == 0x5eccbeef ? "ok" : "failed", seen_getppid ? "ok" : "failed");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "ptrace"))
		return trace();
	return sweep();
}
