/*
 * Logging: one line per message on stderr, prefixed "khyve: ".
 * die() is for errors before the guest runs (bad arguments, host set-up):
 * it prints one line and exits 1 through exit(), so every cleanup hook
 * registered with atexit() (terminal mode, pidfile, sockets) still runs.
 * Guest-caused problems use warn_ratelimited(): a hostile guest must not be
 * able to flood the host's log.
 */
#ifndef KHYVE_CORE_LOG_H
#define KHYVE_CORE_LOG_H

#include <stdbool.h>
#include <time.h>

#define __printf(a, b) __attribute__((format(printf, a, b)))
#define __must_check __attribute__((warn_unused_result))

/* Print "khyve: <msg>" and exit(1). */
void die(const char *fmt, ...) __printf(1, 2) __attribute__((noreturn));
/* Print "khyve: <msg>: <strerror(errno)>" and exit(1). */
void die_errno(const char *fmt, ...) __printf(1, 2) __attribute__((noreturn));
/* Print "khyve: warning: <msg>". */
void warn(const char *fmt, ...) __printf(1, 2);
/* Print "khyve: <msg>". */
void info(const char *fmt, ...) __printf(1, 2);
/* Print only when KHYVE_DEBUG is set in the environment. */
void debug(const char *fmt, ...) __printf(1, 2);
/* Drop info() messages (warnings and errors still print). */
void log_set_quiet(bool quiet);
/* End lines with CR LF: stderr shares a terminal in raw mode. */
void log_set_crlf(bool crlf);

/*
 * Allow at most 10 messages per call site per second; count the rest and
 * report how many were dropped when the next one gets through.
 */
struct ratelimit {
	time_t window;
	unsigned int printed;
	unsigned int dropped;
};
/* True when a message may be printed now; updates the call site's state. */
bool ratelimit_allow(struct ratelimit *rl);

#define warn_ratelimited(...)                                    \
	do {                                                     \
		static struct ratelimit __rl;                    \
		if (ratelimit_allow(&__rl))                      \
			warn(__VA_ARGS__);                       \
	} while (0)

#endif
