/*
 * KVM's GSI routing table, kept in user space because KVM_SET_GSI_ROUTING
 * replaces the whole table: the irqchip routes KVM sets up by default
 * (GSI 0-15 to the PICs and IOAPIC, 16-23 to the IOAPIC) plus one MSI route
 * per allocated GSI from 24 up. Devices deliver MSIs by writing an eventfd
 * bound to such a GSI with KVM_IRQFD, so no ioctl is on the fast path.
 */
#ifndef KHYVE_CORE_IRQ_ROUTING_H
#define KHYVE_CORE_IRQ_ROUTING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

#define IRQ_ROUTING_FIRST_MSI_GSI 24
#define IRQ_ROUTING_MAX 1024

struct kvm_irq_routing;

struct irq_routing {
	pthread_mutex_t lock;
	int vm_fd;
	struct kvm_irq_routing *table; /* IRQ_ROUTING_MAX entries */
	unsigned int next_gsi;
};

/* Build the default routes (nothing sent to KVM yet). 0 or -errno. */
int irq_routing_init(struct irq_routing *r, int vm_fd) __must_check;
void irq_routing_exit(struct irq_routing *r);
/* A new GSI routed as an MSI to (@addr, @data); returns the GSI or -errno. */
int irq_routing_add_msi(struct irq_routing *r, uint64_t addr, uint32_t data);
/* Re-target @gsi; 0 or -errno. */
int irq_routing_set_msi(struct irq_routing *r, unsigned int gsi, uint64_t addr,
			uint32_t data) __must_check;
/* Bind (or unbind) eventfd @fd to @gsi with KVM_IRQFD. 0 or -errno. */
int irq_routing_irqfd(struct irq_routing *r, int fd, unsigned int gsi,
		      bool assign) __must_check;

#endif
