/*
 * The PS/2 keyboard controller at ports 0x60/0x64, as much of it as a guest
 * without a keyboard needs: the self-test and configuration byte commands
 * Linux's i8042 driver probes with, and the two ways the controller resets
 * the machine (command 0xFE, and writing the output port with the reset line
 * low), which end the run with exit status 2.
 */
#ifndef KHYVE_HW_I8042_H
#define KHYVE_HW_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

struct vm;

struct i8042 {
	pthread_mutex_t lock;
	struct vm *vm;
	uint8_t ctr;         /* controller configuration byte */
	uint8_t pending_cmd; /* command waiting for its data byte */
	uint8_t out;         /* output buffer */
	bool out_full;
	void (*reset)(struct vm *vm); /* replaceable in tests */
};

void i8042_init(struct i8042 *kbc, struct vm *vm);
uint8_t i8042_read(struct i8042 *kbc, unsigned int port);
void i8042_write(struct i8042 *kbc, unsigned int port, uint8_t value);
/* Claim ports 0x60 and 0x64; 0 or -errno. */
int i8042_attach(struct i8042 *kbc, struct vm *vm) __must_check;

#endif
