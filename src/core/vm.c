/*
 * VM creation and lifetime; see vm.h. The order of set-up follows what KVM
 * requires on x86: TSS and identity-map pages before the first vCPU, the
 * irqchip before vCPUs so each gets an in-kernel LAPIC, then the PIT.
 */
#include "core/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/pvm/pvm_fixup.h"
#include "core/vcpu.h"

#define KVM_MSR_LIST_MAX 1024
#define KVM_CPUID_MAX 256
#define LEGACY_BIOS_END 0x100000ULL
#define LEGACY_BIOS_ALIAS (128ULL << 10)

int vm_check_cap(struct vm *vm, long cap)
{
	int r = ioctl(vm->vm_fd >= 0 ? vm->vm_fd : vm->kvm_fd,
		      KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static void open_kvm(struct vm *vm, const char *path)
{
	int version;

	vm->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
			die("%s: not found: KVM is not available on this host "
			    "(load the kvm_intel or kvm_amd module, or enable "
			    "virtualization in the firmware)",
			    path);
		if (errno == EACCES || errno == EPERM)
			die("%s: permission denied: add yourself to the kvm "
			    "group (sudo usermod -aG kvm $USER) and log in again",
			    path);
		die_errno("%s: cannot open", path);
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		die("%s: not a KVM device or unsupported KVM API version %d "
		    "(need %d)",
		    path, version, KVM_API_VERSION);
}

static void require_caps(struct vm *vm)
{
	static const struct {
		long cap;
		const char *name;
	} caps[] = {
		{ KVM_CAP_IRQCHIP, "in-kernel irqchip" },
		{ KVM_CAP_PIT2, "in-kernel PIT" },
		{ KVM_CAP_USER_MEMORY, "user memory" },
		{ KVM_CAP_SET_TSS_ADDR, "TSS address" },
		{ KVM_CAP_EXT_CPUID, "CPUID set-up" },
		{ KVM_CAP_IOEVENTFD, "ioeventfd" },
		{ KVM_CAP_IRQFD, "irqfd" },
		{ KVM_CAP_SYNC_REGS, "synchronized registers" },
		{ KVM_CAP_IMMEDIATE_EXIT, "immediate exit" },
	};
	size_t i;

	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (!vm_check_cap(vm, caps[i].cap))
			die("KVM on this host lacks a capability khyve needs: %s "
			    "(KVM_CAP %ld); a newer host kernel is required",
			    caps[i].name, caps[i].cap);
}

static void enable_cap(struct vm *vm, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap ec = { .cap = cap, .args = { arg0 } };

	if (vm_check_cap(vm, cap) && ioctl(vm->vm_fd, KVM_ENABLE_CAP, &ec) < 0)
		warn("cannot enable KVM capability %u: %s", cap,
		     strerror(errno));
}

static void fetch_host_tables(struct vm *vm)
{
	vm->cpuid = calloc(1, sizeof(*vm->cpuid) +
				      KVM_CPUID_MAX * sizeof(vm->cpuid->entries[0]));
	vm->msrs = calloc(1, sizeof(*vm->msrs) + KVM_MSR_LIST_MAX * sizeof(uint32_t));
	if (!vm->cpuid || !vm->msrs)
		die("out of memory");
	vm->cpuid->nent = KVM_CPUID_MAX;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) < 0)
		die_errno("KVM_GET_SUPPORTED_CPUID");
	vm->msrs->nmsrs = KVM_MSR_LIST_MAX;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, vm->msrs) < 0)
		die_errno("KVM_GET_MSR_INDEX_LIST");
}

static int add_slot(struct vm *vm, uint64_t gpa, uint64_t size, void *host,
		    uint32_t flags)
{
	struct kvm_userspace_memory_region region = {
		.slot = vm->next_slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return -errno;
	vm->next_slot++;
	return 0;
}

static void setup_memory(struct vm *vm, uint64_t size)
{
	int err = guest_mem_init(&vm->mem, size);

	if (err)
		die("cannot allocate %llu MiB of guest memory: %s",
		    (unsigned long long)(size >> 20), strerror(-err));
	err = add_slot(vm, 0, vm->mem.low_size, vm->mem.host, 0);
	if (!err && vm->mem.high_size)
		err = add_slot(vm, GUEST_4G, vm->mem.high_size,
			       vm->mem.host + vm->mem.low_size, 0);
	if (err)
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(-err));
}

void vm_create(struct vm *vm, const struct vm_options *opts)
{
	const char *path = opts->kvm_path ? opts->kvm_path : "/dev/kvm";
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = VM_IDENTITY_MAP_ADDR;
	unsigned int i;
	int max_vcpus;

	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = -1;
	vm->stop_reason = VM_RUNNING;
	vm->ignore_unknown_msrs = opts->ignore_unknown_msrs;
	vm->x2apic = opts->x2apic;
	open_kvm(vm, path);
	require_caps(vm);

	max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus <= 0)
		max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus > 0 && opts->nr_vcpus > (unsigned int)max_vcpus)
		die("-c %u: this host's KVM supports at most %d vCPUs",
		    opts->nr_vcpus, max_vcpus);

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		die_errno("KVM_CREATE_VM");
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size <= 0)
		die_errno("KVM_GET_VCPU_MMAP_SIZE");
	fetch_host_tables(vm);
	vm->pvm = pvm_host_detect();

	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0)
		die_errno("KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
		die_errno("KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		die_errno("KVM_CREATE_IRQCHIP");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		die_errno("KVM_CREATE_PIT2");
	if (irq_routing_init(&vm->irq_routing, vm->vm_fd))
		die("out of memory for the interrupt routing table");

	/* Unknown MSRs come to user space so -w can decide what they do. */
	enable_cap(vm, KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_UNKNOWN);
	/* Instruction bytes with every emulation failure (SPEC §7). */
	enable_cap(vm, KVM_CAP_EXIT_ON_EMULATION_FAILURE, 1);
	/* #PF injected by the fix-ups carries CR2 as a payload, no SREGS write. */
	enable_cap(vm, KVM_CAP_EXCEPTION_PAYLOAD, 1);

	setup_memory(vm, opts->mem_size);
	if (iobus_init(&vm->pio, "pio", true) || iobus_init(&vm->mmio, "mmio", false))
		die("out of memory");
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0)
		die_errno("eventfd");

	vm->nr_vcpus = opts->nr_vcpus;
	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		die("out of memory");
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_create(vm, &vm->vcpus[i], i);
}

int vm_map_bootrom(struct vm *vm, const void *image, uint64_t size)
{
	uint64_t alias = size < LEGACY_BIOS_ALIAS ? size : LEGACY_BIOS_ALIAS;
	void *rom;
	int err;

	if (!size || size % 4096 || size > VM_BOOTROM_MAX)
		return -EINVAL;
	rom = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rom == MAP_FAILED)
		return -errno;
	memcpy(rom, image, size);
	/* Guest writes to a read-only slot exit as MMIO and are dropped. */
	err = add_slot(vm, GUEST_4G - size, size, rom, KVM_MEM_READONLY);
	if (err) {
		munmap(rom, size);
		return err;
	}
	vm->bootrom = rom;
	vm->bootrom_size = size;
	/* The reset code far-jumps to F000:xxxx: alias the top of the ROM there. */
	return guest_mem_write(&vm->mem, LEGACY_BIOS_END - alias,
			       (const uint8_t *)image + size - alias, alias);
}

void vm_start(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_start(&vm->vcpus[i]);
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;

	if (__atomic_compare_exchange_n(&vm->stop_reason, &expected, reason,
					false, __ATOMIC_SEQ_CST,
					__ATOMIC_SEQ_CST)) {
		if (write(vm->stop_efd, &one, sizeof(one)) < 0)
			warn("cannot signal VM stop: %s", strerror(errno));
	}
}

enum vm_stop_reason vm_stop_reason(struct vm *vm)
{
	return __atomic_load_n(&vm->stop_reason, __ATOMIC_SEQ_CST);
}

void vm_stop_vcpus(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].started = false;
		}
	}
}

void vm_destroy(struct vm *vm)
{
	unsigned int i;

	for (i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	iobus_exit(&vm->pio);
	iobus_exit(&vm->mmio);
	if (vm->bootrom)
		munmap(vm->bootrom, vm->bootrom_size);
	guest_mem_exit(&vm->mem);
	irq_routing_exit(&vm->irq_routing);
	free(vm->cpuid);
	free(vm->msrs);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	close(vm->vm_fd);
	close(vm->kvm_fd);
}

void vm_irq_line(struct vm *vm, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		warn_ratelimited("KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}
