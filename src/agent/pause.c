/*
 * pause.c - berth-pause, the process that owns an awsvpc task's network
 * namespace (the ECS agent's "pause" container, Kubernetes' pause). Linked
 * statically so it runs from a bind mount in an empty root filesystem. It
 * sleeps until SIGTERM or SIGINT and exits 0; as PID 1 it also reaps any
 * child that ends up parented to it.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return 2;
	struct sigaction stop = { .sa_handler = on_stop }, child = { .sa_handler = on_child };
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGCHLD, &child, NULL);
	for (;;)
		pause();
}
