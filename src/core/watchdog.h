/*
 * The stuck-vCPU watchdog (SPEC §7: never hang silently). Every period the
 * main thread asks each vCPU for a sample; the vCPU thread, interrupted out
 * of KVM_RUN, records its RIP and whether it is runnable (a halted vCPU is
 * idle, not stuck). A runnable vCPU found at the same kernel RIP for
 * WATCHDOG_STUCK_SAMPLES samples in a row is reported once with the
 * instruction bytes there. If that instruction is a KVM hypercall on a
 * software-virtualized host, where it can never complete, the run stops
 * with exit status 1 and a sentence saying what the guest needs instead.
 *
 * The same samples tell when the guest has halted for good: every vCPU in
 * HLT with interrupts disabled, twice in a row. Nothing but an NMI or INIT
 * can wake such a machine, so the run ends as HyperKit's does on a halt,
 * with exit status 0.
 */
#ifndef KHYVE_CORE_WATCHDOG_H
#define KHYVE_CORE_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/evloop.h"

#define WATCHDOG_PERIOD_MS 10000
#define WATCHDOG_STUCK_SAMPLES 3

struct vm;
struct vcpu;

struct watchdog_state {
	bool sample_requested;
	uint64_t last_rip;
	unsigned int same;
	bool reported;
	unsigned int halted_samples; /* in a row, HLT with IF clear */
};

struct watchdog {
	struct vm *vm;
	struct ev_handler timer;
};

/* Start sampling every @period_ms in @loop; 0 or -errno. */
int watchdog_start(struct watchdog *wd, struct vm *vm, struct evloop *loop,
		   uint64_t period_ms) __must_check;
/* Called by the vCPU thread after KVM_RUN returns; cheap when not asked. */
void watchdog_sample(struct vcpu *vcpu);
/*
 * Judge one sample (pure, unit-tested): returns true when the vCPU now
 * counts as stuck and has not been reported yet.
 */
bool watchdog_judge(struct watchdog_state *st, uint64_t rip, bool runnable,
		    unsigned int cpl);
/* True when every vCPU of @vm has been halted for good for 2 samples. */
bool watchdog_all_halted(struct vm *vm);
/* True when @bytes start with vmcall (0f 01 c1) or vmmcall (0f 01 d9). */
bool watchdog_is_hypercall(const uint8_t *bytes, unsigned int len);

#endif
