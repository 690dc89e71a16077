/*
 * Console backends: stdio, autopty, socket, a device, null. Each sets the
 * console's in_fd/out_fd (and the socket's listening fd); the core does the
 * rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "console/console.h"

static void set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* stdio: the terminal in raw mode, or whatever stdin/stdout are. */
static int stdio_open(struct console *c, const char *arg, const char **why)
{
	int err;

	if (arg) {
		*why = "stdio takes no argument";
		return -EINVAL;
	}
	c->in_fd = STDIN_FILENO;
	c->out_fd = STDOUT_FILENO;
	if (isatty(STDIN_FILENO)) {
		err = console_make_raw(c, STDIN_FILENO);
		if (err) {
			*why = "cannot put the terminal in raw mode";
			return err;
		}
	}
	err = console_watch_input(c);
	if (err)
		*why = "cannot watch standard input";
	return err;
}

static void stdio_close(struct console *c)
{
	c->in_fd = c->out_fd = -1;
}

/* Replace @link with a symlink to @target, refusing to clobber a file. */
static int make_link(const char *link, const char *target, const char **why)
{
	struct stat st;

	if (lstat(link, &st) == 0) {
		if (!S_ISLNK(st.st_mode)) {
			*why = "autopty path exists and is not a symlink";
			return -EEXIST;
		}
		unlink(link);
	}
	if (symlink(target, link) < 0) {
		*why = "cannot create the autopty symlink";
		return -errno;
	}
	return 0;
}

static int pty_open(struct console *c, const char *arg, const char **why)
{
	int err;

	c->in_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (c->in_fd < 0 || grantpt(c->in_fd) < 0 || unlockpt(c->in_fd) < 0 ||
	    ptsname_r(c->in_fd, c->pty, sizeof(c->pty)) != 0) {
		*why = "cannot allocate a pseudo-terminal";
		err = -errno;
		goto err_close;
	}
	/* Keep the slave open: the master then never reads EOF/EIO when a
	 * client detaches, and the line discipline stays raw for the next. */
	c->pty_slave_fd = open(c->pty, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (c->pty_slave_fd < 0) {
		*why = "cannot open the pseudo-terminal";
		err = -errno;
		goto err_close;
	}
	err = console_make_raw(c, c->pty_slave_fd);
	if (err) {
		*why = "cannot put the pseudo-terminal in raw mode";
		goto err_close;
	}
	set_nonblock(c->in_fd);
	c->out_fd = c->in_fd;
	c->out_drop_when_full = true;
	if (arg && *arg) {
		err = make_link(arg, c->pty, why);
		if (err)
			goto err_close;
		snprintf(c->path, sizeof(c->path), "%s", arg);
	}
	err = console_watch_input(c);
	if (!err)
		return 0;
	*why = "cannot watch the pseudo-terminal";
err_close:
	if (c->path[0])
		unlink(c->path);
	c->path[0] = '\0';
	if (c->pty_slave_fd >= 0)
		close(c->pty_slave_fd);
	if (c->in_fd >= 0)
		close(c->in_fd);
	c->in_fd = c->out_fd = c->pty_slave_fd = -1;
	c->termios_fd = -1;
	return err;
}

static void pty_close(struct console *c)
{
	if (c->path[0])
		unlink(c->path);
	if (c->in_fd >= 0)
		close(c->in_fd);
	if (c->pty_slave_fd >= 0)
		close(c->pty_slave_fd);
	c->in_fd = c->out_fd = c->pty_slave_fd = -1;
}

static void socket_accept(struct ev_handler *h, uint32_t events)
{
	static const char busy[] = "khyve: console in use by another client\r\n";
	struct console *c = h->opaque;
	int fd;

	(void)events;
	fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->in_fd >= 0) {
		/* One client at a time. */
		pthread_mutex_unlock(&c->lock);
		if (write(fd, busy, sizeof(busy) - 1) < 0)
			debug("console busy message not sent");
		close(fd);
		return;
	}
	c->in_fd = c->out_fd = fd;
	c->ring_len = 0;
	pthread_mutex_unlock(&c->lock);
	if (console_watch_input(c)) {
		warn("%s: cannot watch the console client", c->name);
		close(fd);
		c->in_fd = c->out_fd = -1;
	}
}

static int socket_open(struct console *c, const char *arg, const char **why)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int err;

	if (!arg || !*arg || strlen(arg) >= sizeof(sa.sun_path)) {
		*why = "socket needs a path shorter than 108 bytes";
		return -EINVAL;
	}
	strcpy(sa.sun_path, arg);
	if (lstat(arg, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*why = "socket path exists and is not a socket";
			return -EEXIST;
		}
		unlink(arg); /* a stale socket of an earlier run */
	}
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0) {
		*why = "cannot create a Unix socket";
		return -errno;
	}
	if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(c->listen_fd, 4) < 0) {
		err = -errno;
		*why = "cannot listen on the console socket";
		close(c->listen_fd);
		c->listen_fd = -1;
		return err;
	}
	snprintf(c->path, sizeof(c->path), "%s", arg);
	c->out_drop_when_full = true;
	c->in_pollable = true;
	err = evloop_add(c->loop, &c->listen_ev, c->listen_fd, EPOLLIN,
			 socket_accept, c);
	if (err) {
		*why = "cannot watch the console socket";
		close(c->listen_fd);
		unlink(c->path);
		c->listen_fd = -1;
	}
	return err;
}

static void socket_close(struct console *c)
{
	if (c->in_fd >= 0)
		close(c->in_fd);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->path[0])
		unlink(c->path);
	c->in_fd = c->out_fd = c->listen_fd = -1;
}

/* A device such as /dev/ttyS1 or /dev/pts/3: raw mode if it is a terminal. */
static int device_open(struct console *c, const char *arg, const char **why)
{
	int err;

	c->in_fd = open(arg, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (c->in_fd < 0) {
		*why = "cannot open the console device";
		return -errno;
	}
	c->out_fd = c->in_fd;
	if (isatty(c->in_fd)) {
		err = console_make_raw(c, c->in_fd);
		if (err) {
			*why = "cannot put the console device in raw mode";
			goto err_close;
		}
	}
	err = console_watch_input(c);
	if (!err)
		return 0;
	*why = "cannot watch the console device";
	if (c->termios_fd >= 0)
		tcsetattr(c->termios_fd, TCSAFLUSH, &c->saved_termios);
	c->termios_fd = -1;
err_close:
	close(c->in_fd);
	c->in_fd = c->out_fd = -1;
	return err;
}

static void device_close(struct console *c)
{
	if (c->in_fd >= 0)
		close(c->in_fd);
	c->in_fd = c->out_fd = -1;
}

static int null_open(struct console *c, const char *arg, const char **why)
{
	(void)c;
	if (arg) {
		*why = "null takes no argument";
		return -EINVAL;
	}
	return 0;
}

static void null_close(struct console *c)
{
	(void)c;
}

static const struct console_backend backends[] = {
	{ "stdio", stdio_open, stdio_close },
	{ "autopty", pty_open, pty_close },
	{ "socket", socket_open, socket_close },
	{ "device", device_open, device_close },
	{ "null", null_open, null_close },
};

const struct console_backend *console_backend_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strcmp(backends[i].name, name))
			return &backends[i];
	return NULL;
}
