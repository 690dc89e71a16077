/*
 * libFuzzer target: a disk's -s conf string (bhyve's PATH,opt,... and
 * HyperKit's file://PATH?...,qcow-config=... forms) through
 * blk_conf_parse(). Every input must either parse, with a path, or fail
 * with a message; never crash or leak. Build and run: make fuzz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/blk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *conf = malloc(size + 1);
	struct blk_conf c;
	char err[256];

	if (!conf)
		return 0;
	memcpy(conf, data, size);
	conf[size] = '\0';
	err[0] = '\0';
	if (blk_conf_parse(conf, &c, err, sizeof(err))) {
		if (!err[0])
			abort(); /* a refusal must say why */
	} else if (!c.opts.path || !*c.opts.path) {
		abort(); /* accepted without a path */
	}
	blk_conf_free(&c);
	free(conf);
	return 0;
}
