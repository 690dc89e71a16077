/*
 * The GSI routing table (see irq_routing.h). Updates are rare (the guest
 * programming MSI-X vectors), so each one sends the whole table.
 */
#include "core/irq_routing.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static void add_irqchip(struct kvm_irq_routing *t, unsigned int gsi,
			unsigned int chip, unsigned int pin)
{
	struct kvm_irq_routing_entry *e = &t->entries[t->nr++];

	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

int irq_routing_init(struct irq_routing *r, int vm_fd)
{
	unsigned int gsi;

	memset(r, 0, sizeof(*r));
	r->table = calloc(1, sizeof(*r->table) +
				     IRQ_ROUTING_MAX *
					     sizeof(struct kvm_irq_routing_entry));
	if (!r->table)
		return -ENOMEM;
	r->vm_fd = vm_fd;
	/* KVM's own defaults (virt/kvm/irqchip default routing on x86). */
	for (gsi = 0; gsi < 24; gsi++) {
		add_irqchip(r->table, gsi, KVM_IRQCHIP_IOAPIC, gsi);
		if (gsi < 16)
			add_irqchip(r->table, gsi,
				    gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
					    : KVM_IRQCHIP_PIC_SLAVE,
				    gsi % 8);
	}
	r->next_gsi = IRQ_ROUTING_FIRST_MSI_GSI;
	pthread_mutex_init(&r->lock, NULL);
	return 0;
}

void irq_routing_exit(struct irq_routing *r)
{
	if (!r->table)
		return;
	free(r->table);
	r->table = NULL;
	pthread_mutex_destroy(&r->lock);
}

static int commit(struct irq_routing *r)
{
	return ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, r->table) < 0 ? -errno : 0;
}

static struct kvm_irq_routing_entry *find_msi(struct irq_routing *r,
					      unsigned int gsi)
{
	unsigned int i;

	for (i = 0; i < r->table->nr; i++)
		if (r->table->entries[i].gsi == gsi &&
		    r->table->entries[i].type == KVM_IRQ_ROUTING_MSI)
			return &r->table->entries[i];
	return NULL;
}

static void fill_msi(struct kvm_irq_routing_entry *e, unsigned int gsi,
		     uint64_t addr, uint32_t data)
{
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = (uint32_t)(addr >> 32);
	e->u.msi.data = data;
}

int irq_routing_add_msi(struct irq_routing *r, uint64_t addr, uint32_t data)
{
	int ret, gsi;

	pthread_mutex_lock(&r->lock);
	if (r->table->nr >= IRQ_ROUTING_MAX) {
		pthread_mutex_unlock(&r->lock);
		return -ENOSPC;
	}
	gsi = r->next_gsi++;
	fill_msi(&r->table->entries[r->table->nr++], gsi, addr, data);
	ret = commit(r);
	if (ret) {
		r->table->nr--;
		r->next_gsi--;
		gsi = ret;
	}
	pthread_mutex_unlock(&r->lock);
	return gsi;
}

int irq_routing_set_msi(struct irq_routing *r, unsigned int gsi, uint64_t addr,
			uint32_t data)
{
	struct kvm_irq_routing_entry *e;
	int ret = -ENOENT;

	pthread_mutex_lock(&r->lock);
	e = find_msi(r, gsi);
	if (e) {
		if (e->u.msi.address_lo == (uint32_t)addr &&
		    e->u.msi.address_hi == (uint32_t)(addr >> 32) &&
		    e->u.msi.data == data)
			ret = 0;
		else {
			fill_msi(e, gsi, addr, data);
			ret = commit(r);
		}
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_routing_irqfd(struct irq_routing *r, int fd, unsigned int gsi,
		      bool assign)
{
	struct kvm_irqfd irqfd = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(r->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}
