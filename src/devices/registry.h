/*
 * The emulations -s can name, and the only place that decides which exist.
 * An emulation that a later piece of work brings is listed as such and
 * refused with "not supported yet", never silently ignored.
 */
#ifndef KHYVE_DEVICES_REGISTRY_H
#define KHYVE_DEVICES_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

struct machine;

struct emulation {
	const char *name;
	/* NULL: known, not implemented yet. */
	int (*create)(struct machine *m, const struct slot_config *sc,
		      char *err, size_t errlen);
};

/* The emulation called @name, or NULL when no such emulation exists. */
const struct emulation *registry_find(const char *name);
/*
 * Check every -s of @cfg: known, implemented. 0 or -EINVAL/-ENOTSUP with
 * @err naming the slot and emulation.
 */
int registry_check(const struct config *cfg, char *err, size_t errlen) __must_check;

#endif
