/*
 * devbench: the device-path benchmarks (see devbench.c). Each subcommand
 * lives in its own file and shares the driver helpers declared here.
 */
#ifndef KHYVE_TOOLS_BENCH_DEVBENCH_H
#define KHYVE_TOOLS_BENCH_DEVBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdriver.h"

/* Wall and CPU time of one measured stretch. */
struct bench_clock {
	double t0, proc0, thread0;
	double seconds;
	double dev_cpu; /* the process less this thread: khyve's share */
	double drv_cpu; /* this thread: the driver, the guest's share */
};

/* Print "devbench: ..." on stderr and exit 1. */
void bench_fail(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
/* CLOCK_MONOTONIC in seconds. */
double bench_now(void);
void bench_start(struct bench_clock *c);
void bench_stop(struct bench_clock *c);
/*
 * One JSON line: seconds, ops, bytes, dev_cpu, drv_cpu, then @extra_fmt
 * (", \"key\": value" pieces) if not NULL.
 */
void bench_print(const struct bench_clock *c, uint64_t ops, uint64_t bytes,
		 const char *extra_fmt, ...);
void bench_fill_random(void *buf, size_t len);

/*
 * Post a chain on queue @qi in the descriptors of @slot (@per_slot of
 * them, from slot * per_slot): @n_out device-readable buffers of @b, then
 * @n_in device-writable ones. Returns the head (slot * per_slot). Does
 * not kick.
 */
uint16_t bench_post(struct vdriver *d, unsigned int qi, unsigned int slot,
		    unsigned int per_slot, const struct vdriver_buf *b,
		    unsigned int n_out, unsigned int n_in);
/* Kick @qi if the device asked for it since avail idx @old_idx. */
void bench_kick(struct vdriver *d, unsigned int qi, uint16_t old_idx);
/*
 * Wait up to @ms for an interrupt of queue @qa or @qb, and consume what
 * arrived (the two queues of a net or vsock device).
 */
void bench_wait_irq(struct vdriver *d, unsigned int qa, unsigned int qb,
		    int ms);
/* vdriver_wait_used(). */
int bench_used(struct vdriver *d, unsigned int qi, uint16_t *head,
	       uint32_t *len, int timeout_ms);

/* The subcommands: argc/argv after the subcommand's name. */
int bench_9p(int argc, char **argv, bool host);
int bench_blk(int argc, char **argv);
int bench_net(int argc, char **argv);
int bench_udpsink(int argc, char **argv);
int bench_tcpsink(int argc, char **argv);
int bench_tcpblast(int argc, char **argv);
int bench_udpblast(int argc, char **argv);
int bench_vsock(int argc, char **argv);
int bench_unixpeer(int argc, char **argv);

#endif
