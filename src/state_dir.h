/*
 * --state-dir DIR: one folder that tells tools about a running VM, as
 * HyperKit-driving tools keep one per VM: khyve.pid (removed at exit),
 * khyve.json (the resolved configuration: memory, vCPUs, boot, devices, and
 * each console's pty or socket path), a `tty` symlink to com1's pty when
 * com1 is an autopty, and console.log with com1's output (added to com1's
 * console when it has no log of its own; com1 becomes a null console with
 * that log when the command line gives it none).
 */
#ifndef KHYVE_STATE_DIR_H
#define KHYVE_STATE_DIR_H

#include <stddef.h>

#include "config/config.h"

struct machine;

/*
 * Create DIR (and its parents) and point com1's log at DIR/console.log;
 * before the consoles open. 0 or -errno with @err.
 */
int state_dir_prepare(struct config *cfg, char *err, size_t errlen) __must_check;
/* Write khyve.pid, khyve.json and the tty link; after the consoles open. */
int state_dir_publish(const struct config *cfg, const struct machine *m,
		      char *err, size_t errlen) __must_check;
/* Remove khyve.pid and the tty link (exit paths; idempotent). */
void state_dir_cleanup(void);
/* The resolved configuration as JSON text (caller frees); NULL on error. */
char *state_dir_json(const struct config *cfg, const struct machine *m);

#endif
