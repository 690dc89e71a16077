/* Logging helpers; see log.h. */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool log_quiet;
static bool log_crlf;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_quiet(bool quiet)
{
	log_quiet = quiet;
}

void log_set_crlf(bool crlf)
{
	log_crlf = crlf;
}

/*
 * Write one whole line with a single fputs under a lock so lines from vCPU
 * threads never interleave. When stderr is the raw-mode terminal of a stdio
 * console, "\r\n" keeps the output readable.
 */
static void vlog(const char *prefix, const char *fmt, va_list ap,
		 const char *suffix)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "khyve: %s", prefix);

	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	pthread_mutex_lock(&log_lock);
	fputs(line, stderr);
	if (suffix) {
		fputs(": ", stderr);
		fputs(suffix, stderr);
	}
	fputs(log_crlf ? "\r\n" : "\n", stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

void die_errno(const char *fmt, ...)
{
	const char *err = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap, err);
	va_end(ap);
	exit(1);
}

void warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap, NULL);
	va_end(ap);
}

void info(const char *fmt, ...)
{
	va_list ap;

	if (log_quiet)
		return;
	va_start(ap, fmt);
	vlog("", fmt, ap, NULL);
	va_end(ap);
}

void debug(const char *fmt, ...)
{
	static int enabled = -1;
	va_list ap;

	if (enabled < 0)
		enabled = getenv("KHYVE_DEBUG") != NULL;
	if (!enabled)
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap, NULL);
	va_end(ap);
}

bool ratelimit_allow(struct ratelimit *rl)
{
	time_t now = time(NULL);
	bool allow;

	pthread_mutex_lock(&log_lock);
	if (now != rl->window) {
		if (rl->dropped) {
			fprintf(stderr, "khyve: (%u similar messages dropped)\n",
				rl->dropped);
		}
		rl->window = now;
		rl->printed = 0;
		rl->dropped = 0;
	}
	allow = rl->printed < 10;
	if (allow)
		rl->printed++;
	else
		rl->dropped++;
	pthread_mutex_unlock(&log_lock);
	return allow;
}
