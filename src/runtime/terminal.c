/*
 * terminal.c - process.terminal: the container side allocates a pty from the
 * container's own devpts (after pivot_root), sends the master over the console
 * socket with SCM_RIGHTS (runc's --console-socket protocol: the message data
 * is the pty's name) and makes the slave its controlling terminal and stdio.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>

#include "runtime/container.h"

int runtime_console_socket_connect(const char *path, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return berth_error_msg(err, ENAMETOOLONG, "console socket path '%s' is too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_errno(err, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return berth_error_set(err, e, "connect to console socket '%s'", path);
	}
	return fd;
}

static int send_fd(int sock, int fd, const char *name)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? negative_errno() : 0;
}

int runtime_console_recv_fd(int sock, int *ret_fd, struct berth_error **err)
{
	char name[256];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = name, .iov_len = sizeof(name) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)
	};
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return berth_error_errno(err, "receive console fd");
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return berth_error_msg(err, EBADMSG, "console socket: no fd received");
	memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
	return 0;
}

int runtime_console_setup(int console_fd, const struct runtime_process *p, bool mount_console,
			  struct berth_error **err)
{
	_cleanup_close_ int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return berth_error_errno(err, "open '/dev/ptmx' in the container");
	int unlock = 0, ptn = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &ptn) < 0)
		return berth_error_errno(err, "unlock pty");
	char name[64];
	snprintf(name, sizeof(name), "/dev/pts/%d", ptn);
	_cleanup_close_ int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return berth_error_errno(err, "open pty '%s'", name);
	if (p->console_width && p->console_height) {
		struct winsize ws = { .ws_row = (unsigned short)p->console_height,
				      .ws_col = (unsigned short)p->console_width };
		ioctl(slave, TIOCSWINSZ, &ws);
	}
	if (mount_console) {
		/* /dev/console: an empty file with the pty bind-mounted over it. */
		_cleanup_close_ int f =
		    open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (f >= 0 && mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0)
			return berth_error_errno(err, "bind-mount '%s' on '/dev/console'", name);
	}
	int r = send_fd(console_fd, master, name);
	if (r < 0)
		return berth_error_set(err, -r, "send pty master over the console socket");
	if (setsid() < 0 && errno != EPERM)
		return berth_error_errno(err, "setsid");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return berth_error_errno(err, "make '%s' the controlling terminal", name);
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			return berth_error_errno(err, "dup2 pty");
	return 0;
}
