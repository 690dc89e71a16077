/* Console core: spec parsing, input ring, output and log; see console.h. */
#include "console/console.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_CONSOLES 4

/* Open consoles, for the exit and crash paths (console_cleanup_at_exit). */
static struct console *open_consoles[MAX_CONSOLES];

static void register_console(struct console *c)
{
	int i;

	for (i = 0; i < MAX_CONSOLES; i++) {
		if (!open_consoles[i]) {
			open_consoles[i] = c;
			return;
		}
	}
}

static void unregister_console(struct console *c)
{
	int i;

	for (i = 0; i < MAX_CONSOLES; i++)
		if (open_consoles[i] == c)
			open_consoles[i] = NULL;
}

void console_restore_terminals(void)
{
	int i;

	for (i = 0; i < MAX_CONSOLES; i++) {
		struct console *c = open_consoles[i];

		if (c && c->termios_fd >= 0)
			tcsetattr(c->termios_fd, TCSAFLUSH, &c->saved_termios);
	}
}

void console_cleanup_at_exit(void)
{
	int i;

	console_restore_terminals();
	for (i = 0; i < MAX_CONSOLES; i++) {
		struct console *c = open_consoles[i];

		if (c && c->path[0])
			unlink(c->path);
	}
}

static void restore_terminal(struct console *c)
{
	if (c->termios_fd < 0)
		return;
	tcsetattr(c->termios_fd, TCSAFLUSH, &c->saved_termios);
	if (c->termios_fd == STDIN_FILENO)
		log_set_crlf(false);
	c->termios_fd = -1;
}

static void crash_handler(int sig)
{
	console_cleanup_at_exit(); /* tcsetattr and unlink: signal-safe */
	signal(sig, SIG_DFL);
	raise(sig);
}

int console_make_raw(struct console *c, int fd)
{
	static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE,
					     SIGILL };
	struct termios raw;
	size_t i;

	if (tcgetattr(fd, &c->saved_termios) < 0)
		return -errno;
	raw = c->saved_termios;
	cfmakeraw(&raw);
	if (tcsetattr(fd, TCSAFLUSH, &raw) < 0)
		return -errno;
	c->termios_fd = fd;
	if (fd == STDIN_FILENO && isatty(STDERR_FILENO))
		log_set_crlf(true);
	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		signal(crash_signals[i], crash_handler);
	return 0;
}

/* A socket client left: close it so that the next one can connect. */
static void drop_client(struct console *c)
{
	evloop_del(c->loop, &c->in_ev);
	pthread_mutex_lock(&c->lock);
	if (c->in_fd >= 0)
		close(c->in_fd);
	c->in_fd = c->out_fd = -1;
	c->in_paused = false;
	pthread_mutex_unlock(&c->lock);
}

static void input_event(struct ev_handler *h, uint32_t events)
{
	struct console *c = h->opaque;
	size_t tail, room;
	ssize_t n = 0;

	(void)events;
	pthread_mutex_lock(&c->lock);
	room = CONSOLE_RING - c->ring_len;
	tail = (c->ring_head + c->ring_len) % CONSOLE_RING;
	if (room > CONSOLE_RING - tail)
		room = CONSOLE_RING - tail;
	if (!room) {
		/* Full: stop reading until the guest drains some. */
		c->in_paused = true;
		evloop_modify(c->loop, &c->in_ev, 0);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	n = read(c->in_fd, c->ring + tail, room);
	if (n > 0)
		c->ring_len += n;
	pthread_mutex_unlock(&c->lock);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		/* EOF or error: a socket client left, stdin closed. */
		if (c->listen_fd >= 0)
			drop_client(c);
		else
			evloop_del(c->loop, &c->in_ev);
		return;
	}
	if (n > 0 && c->input_ready)
		c->input_ready(c->input_opaque);
}

int console_watch_input(struct console *c)
{
	int err = evloop_add(c->loop, &c->in_ev, c->in_fd, EPOLLIN, input_event, c);

	if (err == -EPERM) {
		/* A regular file or /dev/null: epoll cannot watch it, so the
		 * UART's reads pull from it directly (console_read). */
		c->in_pollable = false;
		return 0;
	}
	c->in_pollable = true;
	return err;
}

void console_set_input_ready(struct console *c, void (*fn)(void *), void *opaque)
{
	c->input_ready = fn;
	c->input_opaque = opaque;
}

size_t console_read(struct console *c, void *buf, size_t max)
{
	uint8_t *out = buf;
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->in_pollable && c->in_fd >= 0 && !c->ring_len) {
		ssize_t r = read(c->in_fd, c->ring, CONSOLE_RING);

		c->ring_head = 0;
		if (r > 0)
			c->ring_len = r;
		else
			c->in_fd = -1; /* EOF: no more input */
	}
	while (n < max && c->ring_len) {
		out[n++] = c->ring[c->ring_head];
		c->ring_head = (c->ring_head + 1) % CONSOLE_RING;
		c->ring_len--;
	}
	/* Resume reading only once half the ring is free: resuming at every
	 * byte taken would cost an epoll_ctl and a wake-up per byte. */
	if (c->in_paused && c->ring_len <= CONSOLE_RING / 2) {
		c->in_paused = false;
		evloop_modify(c->loop, &c->in_ev, EPOLLIN);
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= n;
	}
}

void console_write(struct console *c, const void *buf, size_t len)
{
	pthread_mutex_lock(&c->lock);
	if (c->log_fd >= 0)
		write_all(c->log_fd, buf, len);
	if (c->out_fd >= 0) {
		if (c->out_drop_when_full) {
			ssize_t n = write(c->out_fd, buf, len);

			if (n < (ssize_t)len)
				c->dropped_bytes += len - (n > 0 ? n : 0);
		} else {
			write_all(c->out_fd, buf, len);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* Split "backend[=arg][,log=FILE]"; fills @backend and @arg in @buf. */
static int parse_spec(const char *spec, char *buf, size_t size,
		      const char **backend, const char **arg, const char **log,
		      const char **why)
{
	char *p, *opt;

	if (!spec || !*spec) {
		*why = "empty console backend";
		return -EINVAL;
	}
	if (strlen(spec) >= size) {
		*why = "console specification too long";
		return -ENAMETOOLONG;
	}
	strcpy(buf, spec);
	*log = NULL;
	/* Options after the first comma; only log= is known. */
	p = strchr(buf, ',');
	if (p) {
		*p++ = '\0';
		while ((opt = strsep(&p, ",")) != NULL) {
			if (!strncmp(opt, "log=", 4) && opt[4]) {
				*log = opt + 4;
			} else {
				*why = "unknown console option (expected log=FILE)";
				return -EINVAL;
			}
		}
	}
	*backend = buf;
	*arg = NULL;
	if (buf[0] == '/') {
		*arg = buf; /* a device path */
		*backend = "device";
		return 0;
	}
	p = strchr(buf, '=');
	if (p) {
		*p = '\0';
		*arg = p + 1;
	}
	if (!console_backend_find(*backend)) {
		*why = "unknown console backend (expected stdio, autopty[=PATH], "
		       "socket=PATH, /dev/..., or null)";
		return -EINVAL;
	}
	return 0;
}

/* @why with the system's reason appended, unless @why says it all. */
static const char *with_reason(struct console *c, const char *why, int err)
{
	if (err == -EINVAL || err == -EEXIST || err == -ENAMETOOLONG)
		return why;
	snprintf(c->why, sizeof(c->why), "%s: %s", why, strerror(-err));
	return c->why;
}

int console_check_spec(const char *spec, const char **why)
{
	const char *backend, *arg, *log;
	char buf[512];
	int err = parse_spec(spec, buf, sizeof(buf), &backend, &arg, &log, why);

	if (err)
		return err;
	if (!strcmp(backend, "stdio") && arg) {
		*why = "stdio takes no argument";
		return -EINVAL;
	}
	if (!strcmp(backend, "null") && arg) {
		*why = "null takes no argument";
		return -EINVAL;
	}
	if (!strcmp(backend, "socket") && (!arg || !*arg)) {
		*why = "socket needs a path: socket=PATH";
		return -EINVAL;
	}
	if (arg && strlen(arg) >= CONSOLE_PATH_MAX) {
		*why = "path too long for a Unix socket";
		return -ENAMETOOLONG;
	}
	return 0;
}

int console_open(struct console *c, struct evloop *loop, const char *name,
		 const char *spec, const char **why)
{
	const char *backend, *arg, *log;
	char buf[512];
	int err;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->name = name;
	c->loop = loop;
	c->in_fd = c->out_fd = c->listen_fd = c->log_fd = -1;
	c->pty_slave_fd = c->termios_fd = -1;
	err = console_check_spec(spec, why);
	if (err)
		return err;
	err = parse_spec(spec, buf, sizeof(buf), &backend, &arg, &log, why);
	if (err)
		return err;
	if (log) {
		c->log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
				 0644);
		if (c->log_fd < 0) {
			err = -errno;
			*why = with_reason(c, "cannot open the log file", err);
			return err;
		}
	}
	c->backend = console_backend_find(backend);
	register_console(c);
	err = c->backend->open(c, arg, why);
	if (err) {
		*why = with_reason(c, *why, err);
		restore_terminal(c);
		unregister_console(c);
		if (c->log_fd >= 0)
			close(c->log_fd);
		c->log_fd = -1;
		c->backend = NULL;
	}
	return err;
}

void console_announce(const struct console *c)
{
	if (c->pty[0])
		info("%s: %s%s%s", c->name, c->pty,
		     c->path[0] ? " linked from " : "", c->path);
}

void console_close(struct console *c)
{
	if (!c->backend)
		return;
	evloop_del(c->loop, &c->in_ev);
	evloop_del(c->loop, &c->listen_ev);
	restore_terminal(c);
	unregister_console(c);
	c->backend->close(c);
	if (c->log_fd >= 0)
		close(c->log_fd);
	c->log_fd = -1;
	c->backend = NULL;
}
