/*
 * The virtual machine: the KVM VM file descriptor, guest RAM, the two I/O
 * buses, the in-kernel irqchip and PIT, and the vCPUs. vm_create() does all
 * the host set-up and dies with one clear line when the host cannot run a VM
 * (no /dev/kvm, no permission, a missing capability). The machine's devices
 * are attached by main.c; the VM knows none of them.
 *
 * A run ends when something calls vm_request_stop(): a device (ACPI S5,
 * reset), a vCPU (triple fault, fatal exit) or the signal handling in main.
 * The first reason wins and becomes khyve's exit status.
 */
#ifndef KHYVE_CORE_VM_H
#define KHYVE_CORE_VM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "core/iobus.h"
#include "core/irq_routing.h"

/* HyperKit's exit statuses. */
enum vm_stop_reason {
	VM_RUNNING = -1,
	VM_STOP_POWEROFF = 0,
	VM_STOP_ERROR = 1,
	VM_STOP_RESET = 2,
	VM_STOP_TRIPLE_FAULT = 3,
};

/* Where KVM's x86 private pages go: just below the bootrom window. */
#define VM_IDENTITY_MAP_ADDR 0xFEFFC000ULL
#define VM_TSS_ADDR 0xFEFFD000ULL
#define VM_BOOTROM_MAX (16ULL << 20)

struct vcpu;

struct vm_options {
	const char *kvm_path;    /* default /dev/kvm, KHYVE_KVM_PATH overrides */
	uint64_t mem_size;
	unsigned int nr_vcpus;
	bool ignore_unknown_msrs; /* -w */
	bool x2apic;              /* -x */
};

struct vm {
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;
	struct guest_mem mem;
	struct iobus pio;
	struct iobus mmio;
	struct irq_routing irq_routing; /* MSI routes for irqfd */
	unsigned int nr_vcpus;
	struct vcpu *vcpus;
	struct kvm_cpuid2 *cpuid;   /* KVM_GET_SUPPORTED_CPUID */
	struct kvm_msr_list *msrs;  /* KVM_GET_MSR_INDEX_LIST */
	bool pvm;                   /* software-virtualized host (SPEC §7) */
	bool ignore_unknown_msrs;
	bool x2apic;
	int stop_reason;            /* enum vm_stop_reason, atomic */
	int stop_efd;               /* eventfd: readable once a stop is requested */
	void *bootrom;              /* host mapping of the firmware, if any */
	uint64_t bootrom_size;
	unsigned int next_slot;
};

/* Open KVM and build the VM with its RAM, irqchip, PIT and vCPUs; dies on error. */
void vm_create(struct vm *vm, const struct vm_options *opts);
/*
 * Map @size bytes of firmware (a multiple of 4 KiB) read-only just below
 * 4 GiB, and copy its last 128 KiB to the legacy BIOS area below 1 MiB, as a
 * PC chipset aliases it. 0 or -errno.
 */
int vm_map_bootrom(struct vm *vm, const void *image, uint64_t size) __must_check;
/* Start one thread per vCPU. */
void vm_start(struct vm *vm);
/* Ask the VM to stop with @reason; the first request wins. Thread-safe. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason);
/* The stop reason, or VM_RUNNING. */
enum vm_stop_reason vm_stop_reason(struct vm *vm);
/* Kick every vCPU out of KVM_RUN and join the threads. */
void vm_stop_vcpus(struct vm *vm);
/* Release everything vm_create() made. */
void vm_destroy(struct vm *vm);
/* Set the level of an interrupt line (GSI) of the in-kernel irqchip. */
void vm_irq_line(struct vm *vm, unsigned int gsi, int level);
/* Check a KVM capability; returns KVM_CHECK_EXTENSION's answer. */
int vm_check_cap(struct vm *vm, long cap);

#endif
