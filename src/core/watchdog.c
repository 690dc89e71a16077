/* The stuck-vCPU watchdog; see watchdog.h. */
#include "core/watchdog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/pvm/pvm_walk.h"
#include "core/vcpu.h"

#define INSN_BYTES 8
#define RFLAGS_IF (1ULL << 9)

/* One watchdog per process: its period, for the report. */
static uint64_t watchdog_period_ms = WATCHDOG_PERIOD_MS;

bool watchdog_judge(struct watchdog_state *st, uint64_t rip, bool runnable,
		    unsigned int cpl)
{
	if (!runnable || cpl != 0 || rip != st->last_rip) {
		st->last_rip = rip;
		st->same = 1;
		st->reported = false;
		return false;
	}
	if (++st->same < WATCHDOG_STUCK_SAMPLES || st->reported)
		return false;
	st->reported = true;
	return true;
}

bool watchdog_is_hypercall(const uint8_t *bytes, unsigned int len)
{
	return len >= 3 && bytes[0] == 0x0f && bytes[1] == 0x01 &&
	       (bytes[2] == 0xc1 || bytes[2] == 0xd9);
}

/* Read the instruction bytes at the vCPU's RIP through its page tables. */
static unsigned int read_insn(struct vcpu *vcpu, uint8_t *buf)
{
	const struct kvm_sync_regs *s = &vcpu->run->s.regs;
	struct pvm_mmu mmu;
	struct pvm_exc exc;
	uint64_t gpa;
	unsigned int n;

	pvm_walk_mmu_init(&mmu, &s->sregs, s->regs.rflags, 52);
	if (pvm_walk_translate(&vcpu->vm->mem, &mmu, s->regs.rip, false, &gpa,
			       &exc))
		return 0;
	/* Stop at the page end rather than walk a second page. */
	n = 4096 - (gpa & 4095);
	if (n > INSN_BYTES)
		n = INSN_BYTES;
	return guest_mem_read(&vcpu->vm->mem, gpa, buf, n) ? 0 : n;
}

static void report(struct vcpu *vcpu)
{
	uint64_t rip = vcpu->run->s.regs.regs.rip;
	uint8_t insn[INSN_BYTES];
	char hex[3 * INSN_BYTES + 1] = "";
	unsigned int i, n = read_insn(vcpu, insn);

	for (i = 0; i < n; i++)
		snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x ", insn[i]);
	if (vcpu->vm->pvm && watchdog_is_hypercall(insn, n)) {
		warn("vCPU %u is stuck in a KVM hypercall (vmcall) at RIP "
		     "0x%llx: this host's software-virtualized KVM never "
		     "completes one. Boot the guest with paravirtual hypercalls "
		     "off (the guest kit's kvm_nohypercall, or nopv)",
		     vcpu->id, (unsigned long long)rip);
		vm_request_stop(vcpu->vm, VM_STOP_ERROR);
		return;
	}
	warn("vCPU %u has not moved from RIP 0x%llx for about %u s (bytes: %s); "
	     "the guest may be stuck",
	     vcpu->id, (unsigned long long)rip,
	     (unsigned int)(WATCHDOG_STUCK_SAMPLES * watchdog_period_ms / 1000),
	     hex);
}

bool watchdog_all_halted(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++)
		if (__atomic_load_n(&vm->vcpus[i].watchdog.halted_samples,
				    __ATOMIC_ACQUIRE) < 2)
			return false;
	return true;
}

void watchdog_sample(struct vcpu *vcpu)
{
	struct kvm_mp_state mp = { KVM_MP_STATE_RUNNABLE };
	const struct kvm_sync_regs *s = &vcpu->run->s.regs;
	bool dead_halt;

	if (!__atomic_exchange_n(&vcpu->watchdog.sample_requested, false,
				 __ATOMIC_ACQ_REL))
		return;
	if (ioctl(vcpu->fd, KVM_GET_MP_STATE, &mp) < 0)
		return;
	dead_halt = mp.mp_state == KVM_MP_STATE_HALTED &&
		    !(s->regs.rflags & RFLAGS_IF);
	__atomic_store_n(&vcpu->watchdog.halted_samples,
			 dead_halt ? vcpu->watchdog.halted_samples + 1 : 0,
			 __ATOMIC_RELEASE);
	if (dead_halt && watchdog_all_halted(vcpu->vm)) {
		info("the guest halted with interrupts disabled on every vCPU");
		vm_request_stop(vcpu->vm, VM_STOP_POWEROFF);
		return;
	}
	if (watchdog_judge(&vcpu->watchdog, s->regs.rip,
			   mp.mp_state == KVM_MP_STATE_RUNNABLE,
			   s->sregs.cs.dpl))
		report(vcpu);
}

static void tick(struct ev_handler *h, uint32_t events)
{
	struct watchdog *wd = h->opaque;
	unsigned int i;

	(void)events;
	evloop_timer_ack(h);
	for (i = 0; i < wd->vm->nr_vcpus; i++) {
		struct vcpu *vcpu = &wd->vm->vcpus[i];

		__atomic_store_n(&vcpu->watchdog.sample_requested, true,
				 __ATOMIC_RELEASE);
		vcpu_kick_once(vcpu);
	}
}

int watchdog_start(struct watchdog *wd, struct vm *vm, struct evloop *loop,
		   uint64_t period_ms)
{
	int err;

	wd->vm = vm;
	watchdog_period_ms = period_ms;
	err = evloop_timer_add(loop, &wd->timer, tick, wd);
	if (!err)
		evloop_timer_arm(&wd->timer, period_ms, period_ms);
	return err;
}
