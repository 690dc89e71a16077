/*
 * A console: what sits behind a UART (-l com1,BACKEND[,log=FILE]).
 * Backends: stdio, autopty[=LINK], socket=PATH, a device path, null. The
 * console owns its file descriptors and watches them in the event loop.
 *
 * Output comes from vCPU threads (console_write) and never blocks on a
 * client that does not read: a pty or socket peer that falls behind loses
 * output, stdio and devices are written in full. The log gets everything.
 * Input is read into a ring only while the ring has room; the UART pulls
 * from it (console_read) as its FIFO drains, so pasted input waits in the
 * host instead of being dropped.
 */
#ifndef KHYVE_CONSOLE_CONSOLE_H
#define KHYVE_CONSOLE_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "core/evloop.h"
#include "core/log.h"

#define CONSOLE_RING 4096
#define CONSOLE_PATH_MAX 108 /* sun_path */

struct console;

struct console_backend {
	const char *name;
	/*
	 * Open the backend for @arg (the text after "name=", or NULL);
	 * 0, or -errno with *why saying what failed.
	 */
	int (*open)(struct console *c, const char *arg, const char **why);
	void (*close)(struct console *c);
};

struct console {
	const char *name;  /* "com1" */
	const struct console_backend *backend;
	struct evloop *loop;
	pthread_mutex_t lock;
	int in_fd;          /* -1: no input (yet) */
	int out_fd;         /* -1: output discarded */
	bool in_pollable;   /* false: a regular file read on demand */
	bool out_drop_when_full;
	int listen_fd;      /* socket backend */
	int pty_slave_fd;   /* autopty: kept open so the master never sees EOF */
	int log_fd;
	char path[CONSOLE_PATH_MAX]; /* socket path or pty symlink, removed at exit */
	char pty[64];       /* autopty: /dev/pts/N */
	struct termios saved_termios;
	int termios_fd;     /* fd whose termios we changed, or -1 */
	struct ev_handler in_ev, listen_ev;
	uint8_t ring[CONSOLE_RING];
	size_t ring_head, ring_len;
	bool in_paused;
	void (*input_ready)(void *opaque);
	void *input_opaque;
	uint64_t dropped_bytes;
	char why[192];      /* console_open's error with its reason */
};

/*
 * Parse @spec ("stdio", "autopty=/tmp/link,log=/tmp/x.log", ...) and open the
 * console @name. On error returns -errno with *why set (one sentence).
 */
int console_open(struct console *c, struct evloop *loop, const char *name,
		 const char *spec, const char **why) __must_check;
/* Say where an autopty console is (once every console has opened). */
void console_announce(const struct console *c);
/* Check a spec without opening anything (used while parsing arguments). */
int console_check_spec(const char *spec, const char **why) __must_check;
/* Tell the UART when input arrives. */
void console_set_input_ready(struct console *c, void (*fn)(void *), void *opaque);
/* Output from the guest. Thread-safe. */
void console_write(struct console *c, const void *buf, size_t len);
/* Take up to @max input bytes without blocking. Thread-safe. */
size_t console_read(struct console *c, void *buf, size_t max);
/* Close fds, restore the terminal, remove the socket/symlink. Idempotent. */
void console_close(struct console *c);
/* Restore every terminal a console put in raw mode (crash path). */
void console_restore_terminals(void);
/*
 * For an exit() before the consoles are closed (a later set-up step died):
 * restore terminals and remove socket files and pty symlinks.
 */
void console_cleanup_at_exit(void);

/* Backends (console_backends.c). */
const struct console_backend *console_backend_find(const char *name);
/* Shared by backends: watch in_fd for input. */
int console_watch_input(struct console *c) __must_check;
/* Put @fd in raw mode, remembering the old mode to restore. */
int console_make_raw(struct console *c, int fd) __must_check;

#endif
