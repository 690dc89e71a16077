/*
 * Virtio 1.x PCI transport (virtio 1.2 §4.1), modern devices only.
 *
 * BAR 4 (64-bit memory, 32 KiB) holds, 4 KiB apart:
 *   0x0000 common configuration (struct virtio_pci_common_cfg)
 *   0x1000 ISR status (read clears, and lowers INTx)
 *   0x2000 device-specific configuration (the device's config ops)
 *   0x3000 notify: queue q at 0x3000 + 4 * q (notify_off_multiplier 4),
 *          a KVM ioeventfd on each writing the device's kick_fd
 *   0x4000 MSI-X table, 0x5000 MSI-X PBA
 * Interrupts: an MSI-X vector is a KVM MSI route with an irqfd, routed
 * once the guest programs and unmasks it; a masked vector latches its
 * pending bit and fires on unmask (PCI 3.0 §6.8.2). Without MSI-X the ISR
 * and the INTx pin do the job; with -W a single plain MSI vector replaces
 * MSI-X.
 */
#include "virtio/virtio_pci.h"

#include <errno.h>
#include <linux/virtio_pci.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bus/pci.h"
#include "core/vm.h"
#include "machine.h"

#define VPCI_BAR 4
#define VPCI_BAR_SIZE 0x8000
#define VPCI_COMMON 0x0000
#define VPCI_ISR 0x1000
#define VPCI_DEVICE 0x2000
#define VPCI_NOTIFY 0x3000
#define VPCI_MSIX_TABLE 0x4000
#define VPCI_MSIX_PBA 0x5000
#define VPCI_REGION 0x1000
#define VPCI_NOTIFY_MULT 4
#define VPCI_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)
#define VPCI_ISR_QUEUE 0x1 /* §4.1.4.5: bit 0 queue, bit 1 config */

#define PCI_VENDOR_REDHAT_QUMRANET 0x1af4
#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_ENTRY_MASKED 0x1
#define MSI_CTRL_ENABLE 0x1
#define MSI_CTRL_64BIT 0x80

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct vpci_vector {
	int gsi;        /* KVM route, -1 until first programmed */
	int fd;         /* irqfd eventfd */
	bool pending;   /* PBA bit */
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev *vdev;
	struct vm *vm;
	pthread_mutex_t lock; /* everything below */
	uint32_t device_feature_select, driver_feature_select;
	uint64_t driver_features;
	uint16_t queue_select;
	uint16_t msix_config;
	uint16_t queue_msix[VIRTIO_MAX_QUEUES];
	uint8_t isr;
	unsigned int intx_gsi;
	bool intx_level;
	bool single_msi;        /* -W */
	unsigned int msix_cap, msi_cap;
	unsigned int pci_cfg_cap;  /* VIRTIO_PCI_CAP_PCI_CFG window */
	unsigned int nr_vectors;
	struct msix_entry table[VPCI_MAX_VECTORS];
	struct vpci_vector vec[VPCI_MAX_VECTORS];
	uint64_t ioeventfd_base; /* where the notify ioeventfds are, or 0 */
	char name[48];
};

static uint16_t msix_ctrl(struct virtio_pci *vp)
{
	uint16_t v;

	memcpy(&v, &vp->pci.cfg[vp->msix_cap + 2], 2);
	return v;
}

static bool msix_enabled(struct virtio_pci *vp)
{
	return vp->msix_cap && (msix_ctrl(vp) & MSIX_CTRL_ENABLE);
}

static bool msi_enabled(struct virtio_pci *vp)
{
	return vp->msi_cap && (vp->pci.cfg[vp->msi_cap + 2] & MSI_CTRL_ENABLE);
}

static void fire_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		warn_ratelimited("virtio-pci: irqfd: %s", strerror(errno));
}

/* Make vector @v's KVM route match its table entry; called locked. */
static void sync_vector(struct virtio_pci *vp, unsigned int v, uint64_t addr,
			uint32_t data)
{
	struct vpci_vector *vec = &vp->vec[v];
	int gsi;

	if (!addr)
		return; /* not programmed yet */
	if (vec->gsi < 0) {
		gsi = irq_routing_add_msi(&vp->vm->irq_routing, addr, data);
		if (gsi < 0) {
			warn_ratelimited("%s: no MSI route: %s", vp->name,
					 strerror(-gsi));
			return;
		}
		if (irq_routing_irqfd(&vp->vm->irq_routing, vec->fd, gsi,
				      true)) {
			warn_ratelimited("%s: KVM_IRQFD: %s", vp->name,
					 strerror(errno));
			return;
		}
		vec->gsi = gsi;
	} else if (irq_routing_set_msi(&vp->vm->irq_routing, vec->gsi, addr,
				       data)) {
		warn_ratelimited("%s: MSI route update failed", vp->name);
	}
}

static bool msix_masked(struct virtio_pci *vp, unsigned int v)
{
	return (msix_ctrl(vp) & MSIX_CTRL_MASKALL) ||
	       (vp->table[v].ctrl & MSIX_ENTRY_MASKED);
}

static void sync_msix_vector(struct virtio_pci *vp, unsigned int v)
{
	const struct msix_entry *e = &vp->table[v];

	if (!msix_enabled(vp) || msix_masked(vp, v))
		return;
	sync_vector(vp, v, ((uint64_t)e->addr_hi << 32) | e->addr_lo, e->data);
	if (vp->vec[v].pending && vp->vec[v].gsi >= 0) {
		vp->vec[v].pending = false;
		fire_fd(vp->vec[v].fd);
	}
}

/* Raise @vector (MSI-X), or ISR bit @isr_bit with MSI or INTx; locked. */
static void raise(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	if (msix_enabled(vp)) {
		if (vector == VIRTIO_MSI_NO_VECTOR || vector >= vp->nr_vectors)
			return;
		if (msix_masked(vp, vector) || vp->vec[vector].gsi < 0) {
			vp->vec[vector].pending = true;
			return;
		}
		fire_fd(vp->vec[vector].fd);
		return;
	}
	vp->isr |= isr_bit;
	if (msi_enabled(vp)) {
		if (vp->vec[0].gsi >= 0)
			fire_fd(vp->vec[0].fd);
		return;
	}
	if (!(vp->pci.cfg[PCI_COMMAND + 1] & (PCI_COMMAND_INTX_DISABLE >> 8))) {
		vp->intx_level = true;
		vm_irq_line(vp->vm, vp->intx_gsi, 1);
	}
}

static void notify_queue(struct virtio_dev *dev, unsigned int q)
{
	struct virtio_pci *vp = dev->transport_priv;

	pthread_mutex_lock(&vp->lock);
	raise(vp, vp->queue_msix[q], VPCI_ISR_QUEUE);
	pthread_mutex_unlock(&vp->lock);
}

static void notify_config(struct virtio_dev *dev)
{
	struct virtio_pci *vp = dev->transport_priv;

	pthread_mutex_lock(&vp->lock);
	raise(vp, vp->msix_config, VIRTIO_PCI_ISR_CONFIG);
	pthread_mutex_unlock(&vp->lock);
}

static const struct virtio_transport_ops vpci_transport = {
	.notify_queue = notify_queue,
	.notify_config = notify_config,
};

static void lower_intx(struct virtio_pci *vp)
{
	if (vp->intx_level) {
		vp->intx_level = false;
		vm_irq_line(vp->vm, vp->intx_gsi, 0);
	}
}

/* The driver wrote 0 to device_status: transport state back to power-on. */
static void transport_reset(struct virtio_pci *vp)
{
	unsigned int q;

	vp->device_feature_select = vp->driver_feature_select = 0;
	vp->driver_features = 0;
	vp->queue_select = 0;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	for (q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->queue_msix[q] = VIRTIO_MSI_NO_VECTOR;
	vp->isr = 0;
	lower_intx(vp);
}

static struct virtqueue *selected_queue(struct virtio_pci *vp)
{
	if (vp->queue_select >= vp->vdev->nr_queues)
		return NULL;
	return &vp->vdev->vqs[vp->queue_select];
}

static uint64_t common_read(struct virtio_pci *vp, uint64_t off)
{
	struct virtio_dev *dev = vp->vdev;
	struct virtqueue *vq = selected_queue(vp);

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		return vp->device_feature_select;
	case VIRTIO_PCI_COMMON_DF:
		return vp->device_feature_select < 2 ?
			       (uint32_t)(dev->host_features >>
					  (32 * vp->device_feature_select)) :
			       0;
	case VIRTIO_PCI_COMMON_GFSELECT:
		return vp->driver_feature_select;
	case VIRTIO_PCI_COMMON_GF:
		return vp->driver_feature_select < 2 ?
			       (uint32_t)(vp->driver_features >>
					  (32 * vp->driver_feature_select)) :
			       0;
	case VIRTIO_PCI_COMMON_MSIX:
		return vp->msix_config;
	case VIRTIO_PCI_COMMON_NUMQ:
		return dev->nr_queues;
	case VIRTIO_PCI_COMMON_STATUS:
		return __atomic_load_n(&dev->status, __ATOMIC_SEQ_CST);
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		return (uint8_t)__atomic_load_n(&dev->config_gen,
						__ATOMIC_SEQ_CST);
	case VIRTIO_PCI_COMMON_Q_SELECT:
		return vp->queue_select;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		return vq ? vq->size : 0;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		return vq ? vp->queue_msix[vp->queue_select] :
			    VIRTIO_MSI_NO_VECTOR;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		return vq ? vq->enabled : 0;
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return vp->queue_select;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
		return vq ? (uint32_t)vq->desc_gpa : 0;
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		return vq ? vq->desc_gpa >> 32 : 0;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
		return vq ? (uint32_t)vq->avail_gpa : 0;
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		return vq ? vq->avail_gpa >> 32 : 0;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
		return vq ? (uint32_t)vq->used_gpa : 0;
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		return vq ? vq->used_gpa >> 32 : 0;
	default:
		return 0;
	}
}

static void set_lo(uint64_t *v, uint32_t lo)
{
	*v = (*v & ~0xffffffffULL) | lo;
}

static void set_hi(uint64_t *v, uint32_t hi)
{
	*v = (*v & 0xffffffffULL) | ((uint64_t)hi << 32);
}

/* A vector number the driver may use: in range, or NO_VECTOR (§4.1.5.1.2). */
static uint16_t checked_vector(struct virtio_pci *vp, uint32_t v)
{
	return v < vp->nr_vectors ? v : VIRTIO_MSI_NO_VECTOR;
}

static void common_write(struct virtio_pci *vp, uint64_t off, uint32_t val)
{
	struct virtio_dev *dev = vp->vdev;
	struct virtqueue *vq = selected_queue(vp);
	/* Queue registers are read-only once the queue is enabled (§4.1.4.3.2). */
	bool queue_writable = vq && !vq->enabled;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		vp->device_feature_select = val;
		break;
	case VIRTIO_PCI_COMMON_GFSELECT:
		vp->driver_feature_select = val;
		break;
	case VIRTIO_PCI_COMMON_GF:
		if (vp->driver_feature_select == 0)
			set_lo(&vp->driver_features, val);
		else if (vp->driver_feature_select == 1)
			set_hi(&vp->driver_features, val);
		virtio_dev_set_guest_features(dev, vp->driver_features);
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		vp->msix_config = checked_vector(vp, val);
		break;
	case VIRTIO_PCI_COMMON_STATUS:
		if ((uint8_t)val == 0) {
			/* The device quiesces outside our lock (it may notify). */
			pthread_mutex_unlock(&vp->lock);
			virtio_dev_reset(dev);
			pthread_mutex_lock(&vp->lock);
			transport_reset(vp);
		} else {
			pthread_mutex_unlock(&vp->lock);
			virtio_dev_set_status(dev, (uint8_t)val);
			pthread_mutex_lock(&vp->lock);
		}
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		vp->queue_select = val;
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		if (queue_writable)
			vq->size = val;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (vq)
			vp->queue_msix[vp->queue_select] = checked_vector(vp, val);
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (queue_writable && val == 1 && vq_enable(vq)) {
			pthread_mutex_unlock(&vp->lock);
			virtio_dev_set_needs_reset(dev, "bad queue programming");
			pthread_mutex_lock(&vp->lock);
		}
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
		if (queue_writable)
			set_lo(&vq->desc_gpa, val);
		break;
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		if (queue_writable)
			set_hi(&vq->desc_gpa, val);
		break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
		if (queue_writable)
			set_lo(&vq->avail_gpa, val);
		break;
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		if (queue_writable)
			set_hi(&vq->avail_gpa, val);
		break;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
		if (queue_writable)
			set_lo(&vq->used_gpa, val);
		break;
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		if (queue_writable)
			set_hi(&vq->used_gpa, val);
		break;
	default:
		break; /* read-only or reserved */
	}
}

static void msix_access(struct virtio_pci *vp, uint64_t off, void *data,
			uint32_t len, bool is_write)
{
	if (off >= VPCI_MSIX_PBA) {
		uint64_t pba = 0;
		unsigned int i;

		off -= VPCI_MSIX_PBA;
		if (is_write || off >= 8)
			return;
		for (i = 0; i < vp->nr_vectors; i++)
			if (vp->vec[i].pending)
				pba |= 1ULL << i;
		memcpy(data, (uint8_t *)&pba + off, len > 8 - off ? 8 - off : len);
		return;
	}
	off -= VPCI_MSIX_TABLE;
	/* Table entries take aligned dword (or qword) accesses only. */
	if (off / 16 >= vp->nr_vectors || (off & 3) || (len != 4 && len != 8))
		return;
	if (!is_write) {
		memcpy(data, (uint8_t *)vp->table + off, len);
		return;
	}
	memcpy((uint8_t *)vp->table + off, data, len);
	vp->table[off / 16].ctrl &= MSIX_ENTRY_MASKED;
	sync_msix_vector(vp, off / 16);
}

static void bar_access(void *opaque, uint64_t off, void *data, uint32_t len,
		       bool is_write)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *dev = vp->vdev;
	uint32_t val = 0;

	if (!is_write)
		memset(data, 0, len);
	if (len > 8 || off + len > VPCI_BAR_SIZE)
		return;
	if (off >= VPCI_NOTIFY && off < VPCI_NOTIFY + VPCI_REGION) {
		/* Reached only without ioeventfd: kick by hand. */
		unsigned int q = (off - VPCI_NOTIFY) / VPCI_NOTIFY_MULT;

		if (is_write && q < dev->nr_queues)
			fire_fd(dev->kick_fd[q]);
		return;
	}
	if (off >= VPCI_DEVICE && off < VPCI_DEVICE + VPCI_REGION) {
		off -= VPCI_DEVICE;
		if (off + len > dev->config_size)
			return;
		if (is_write && dev->ops->config_write)
			dev->ops->config_write(dev, off, data, len);
		else if (!is_write && dev->ops->config_read)
			dev->ops->config_read(dev, off, data, len);
		return;
	}
	pthread_mutex_lock(&vp->lock);
	if (off >= VPCI_ISR && off < VPCI_ISR + VPCI_REGION) {
		if (!is_write && off == VPCI_ISR) {
			*(uint8_t *)data = vp->isr;
			vp->isr = 0;
			lower_intx(vp);
		}
	} else if (off >= VPCI_MSIX_TABLE && off < VPCI_MSIX_PBA + VPCI_REGION) {
		msix_access(vp, off, data, len, is_write);
	} else if (off < VPCI_REGION && len <= 4) {
		if (is_write) {
			memcpy(&val, data, len);
			common_write(vp, off, val);
		} else {
			val = common_read(vp, off);
			memcpy(data, &val, len);
		}
	}
	pthread_mutex_unlock(&vp->lock);
}

/*
 * The VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9): the driver names a BAR
 * offset and a length in the capability, then reads or writes pci_cfg_data
 * to reach the BAR through config space alone.
 */
static bool pci_cfg_window(struct virtio_pci *vp, unsigned int offset,
			   unsigned int len, uint32_t *bar_off,
			   uint32_t *length)
{
	unsigned int data = vp->pci_cfg_cap + 16;
	struct pci_dev *pci = &vp->pci;

	if (!vp->pci_cfg_cap || offset >= data + 4 || offset + len <= data)
		return false;
	memcpy(bar_off, &pci->cfg[vp->pci_cfg_cap + 8], 4);
	memcpy(length, &pci->cfg[vp->pci_cfg_cap + 12], 4);
	/* Only aligned 1, 2 or 4-byte accesses to BAR 4 are defined. */
	return pci->cfg[vp->pci_cfg_cap + 4] == VPCI_BAR &&
	       (*length == 1 || *length == 2 || *length == 4) &&
	       !(*bar_off & (*length - 1)) && *bar_off < VPCI_BAR_SIZE;
}

static void cfg_reading(struct pci_dev *pci, unsigned int offset,
			unsigned int len)
{
	struct virtio_pci *vp = pci->opaque;
	uint32_t bar_off, length;

	if (pci_cfg_window(vp, offset, len, &bar_off, &length))
		bar_access(vp, bar_off, &pci->cfg[vp->pci_cfg_cap + 16],
			   length, false);
}

/* (Un)register one ioeventfd per queue at BAR base @base. */
static void set_ioeventfds(struct virtio_pci *vp, uint64_t base, bool assign)
{
	unsigned int q;

	for (q = 0; q < vp->vdev->nr_queues; q++) {
		struct kvm_ioeventfd ioe = {
			.addr = base + VPCI_NOTIFY + q * VPCI_NOTIFY_MULT,
			.len = 2,
			.fd = vp->vdev->kick_fd[q],
			.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
		};

		if (ioctl(vp->vm->vm_fd, KVM_IOEVENTFD, &ioe) < 0 && assign)
			warn_ratelimited("%s: KVM_IOEVENTFD: %s (queue "
					 "notifications will exit to khyve)",
					 vp->name, strerror(errno));
	}
}

static void bar_moved(struct pci_dev *pci, int idx, uint64_t addr)
{
	struct virtio_pci *vp = pci->opaque;

	if (idx != VPCI_BAR || addr == vp->ioeventfd_base)
		return;
	if (vp->ioeventfd_base)
		set_ioeventfds(vp, vp->ioeventfd_base, false);
	vp->ioeventfd_base = addr;
	if (addr)
		set_ioeventfds(vp, addr, true);
}

static void cfg_written(struct pci_dev *pci, unsigned int offset,
			unsigned int len)
{
	struct virtio_pci *vp = pci->opaque;
	uint32_t bar_off, length;
	unsigned int v;

	if (pci_cfg_window(vp, offset, len, &bar_off, &length)) {
		bar_access(vp, bar_off, &pci->cfg[vp->pci_cfg_cap + 16],
			   length, true);
		return;
	}

	pthread_mutex_lock(&vp->lock);
	if (vp->msix_cap && offset < vp->msix_cap + 4 &&
	    offset + len > vp->msix_cap + 2) {
		/* Enable or function mask changed: routes and pending bits. */
		for (v = 0; v < vp->nr_vectors; v++)
			sync_msix_vector(vp, v);
		if (msix_enabled(vp))
			lower_intx(vp);
	}
	if (vp->msi_cap && offset < vp->msi_cap + 14 &&
	    offset + len > vp->msi_cap + 2 && msi_enabled(vp)) {
		uint32_t lo, hi;
		uint16_t data;

		memcpy(&lo, &pci->cfg[vp->msi_cap + 4], 4);
		memcpy(&hi, &pci->cfg[vp->msi_cap + 8], 4);
		memcpy(&data, &pci->cfg[vp->msi_cap + 12], 2);
		sync_vector(vp, 0, ((uint64_t)hi << 32) | lo, data);
		lower_intx(vp);
	}
	if (offset <= PCI_COMMAND + 1 && offset + len > PCI_COMMAND + 1 &&
	    (pci->cfg[PCI_COMMAND + 1] & (PCI_COMMAND_INTX_DISABLE >> 8)))
		lower_intx(vp);
	pthread_mutex_unlock(&vp->lock);
}

static int add_virtio_cap(struct pci_dev *pci, uint8_t type, uint32_t offset,
			  uint32_t length, bool notify)
{
	struct virtio_pci_notify_cap cap = {
		.cap = {
			.cap_vndr = PCI_CAP_ID_VNDR,
			.cap_len = notify ? sizeof(cap) : sizeof(cap.cap),
			.cfg_type = type,
			.bar = VPCI_BAR,
			.offset = offset,
			.length = length,
		},
		.notify_off_multiplier = VPCI_NOTIFY_MULT,
	};

	return pci_dev_add_cap(pci, &cap, cap.cap.cap_len);
}

/* The PCI config access window; bar, offset, length and data are the driver's. */
static int add_pci_cfg_cap(struct pci_dev *pci)
{
	struct virtio_pci_cfg_cap cfg = {
		.cap = { .cap_vndr = PCI_CAP_ID_VNDR,
			 .cap_len = sizeof(cfg),
			 .cfg_type = VIRTIO_PCI_CAP_PCI_CFG },
	};
	int at = pci_dev_add_cap(pci, &cfg, sizeof(cfg));

	if (at < 0)
		return at;
	pci->wmask[at + 4] = 0xff;
	memset(&pci->wmask[at + 8], 0xff, 12);
	return at;
}

static int add_caps(struct virtio_pci *vp)
{
	struct pci_dev *pci = &vp->pci;
	struct virtio_dev *dev = vp->vdev;
	int at;

	if (add_virtio_cap(pci, VIRTIO_PCI_CAP_COMMON_CFG, VPCI_COMMON,
			   sizeof(struct virtio_pci_common_cfg), false) < 0 ||
	    add_virtio_cap(pci, VIRTIO_PCI_CAP_ISR_CFG, VPCI_ISR, 1, false) < 0 ||
	    add_virtio_cap(pci, VIRTIO_PCI_CAP_NOTIFY_CFG, VPCI_NOTIFY,
			   dev->nr_queues * VPCI_NOTIFY_MULT, true) < 0)
		return -ENOSPC;
	if (dev->config_size &&
	    add_virtio_cap(pci, VIRTIO_PCI_CAP_DEVICE_CFG, VPCI_DEVICE,
			   dev->config_size, false) < 0)
		return -ENOSPC;
	at = add_pci_cfg_cap(pci);
	if (at < 0)
		return at;
	vp->pci_cfg_cap = at;
	if (vp->single_msi) {
		/* 64-bit MSI, one vector: enable, address and data writable. */
		uint8_t cap[14] = { PCI_CAP_ID_MSI, 0, MSI_CTRL_64BIT, 0 };

		at = pci_dev_add_cap(pci, cap, sizeof(cap));
		if (at < 0)
			return at;
		vp->msi_cap = at;
		pci->wmask[at + 2] = MSI_CTRL_ENABLE;
		memset(&pci->wmask[at + 4], 0xff, 10);
		pci->wmask[at + 4] = 0xfc;
		vp->nr_vectors = 1;
	} else {
		uint16_t ctrl = vp->nr_vectors - 1;
		uint32_t table = VPCI_MSIX_TABLE | VPCI_BAR;
		uint32_t pba = VPCI_MSIX_PBA | VPCI_BAR;
		uint8_t cap[12] = { PCI_CAP_ID_MSIX, 0 };

		memcpy(&cap[2], &ctrl, 2);
		memcpy(&cap[4], &table, 4);
		memcpy(&cap[8], &pba, 4);
		at = pci_dev_add_cap(pci, cap, sizeof(cap));
		if (at < 0)
			return at;
		vp->msix_cap = at;
		pci->wmask[at + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8;
	}
	return 0;
}

/* PCI class codes by device type, as QEMU and kvmtool report them. */
static uint32_t class_of(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK:
		return 0x018000; /* mass storage, other */
	case VIRTIO_ID_NET:
		return 0x020000; /* ethernet */
	case VIRTIO_ID_CONSOLE:
		return 0x078000; /* communication, other */
	default:
		return 0x00ff00; /* unclassified */
	}
}

static void vpci_close(void *opaque)
{
	struct virtio_pci *vp = opaque;
	unsigned int v;

	if (vp->ioeventfd_base)
		set_ioeventfds(vp, vp->ioeventfd_base, false);
	vp->ioeventfd_base = 0;
	for (v = 0; v < VPCI_MAX_VECTORS; v++) {
		if (vp->vec[v].gsi >= 0 &&
		    irq_routing_irqfd(&vp->vm->irq_routing, vp->vec[v].fd,
				      vp->vec[v].gsi, false))
			warn("%s: KVM_IRQFD deassign failed", vp->name);
		if (vp->vec[v].fd >= 0)
			close(vp->vec[v].fd);
	}
	/* The bus still points at vp->pci until pci_bus_detach: keep vp. */
}

int virtio_pci_add(struct machine *m, const struct slot_config *sc,
		   struct virtio_dev *dev, char *err, size_t errlen)
{
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	unsigned int v;
	int ret;

	if (!vp) {
		snprintf(err, errlen, "%s: out of memory", dev->name);
		return -ENOMEM;
	}
	vp->vdev = dev;
	vp->vm = &m->vm;
	vp->single_msi = m->cfg->single_msi;
	vp->nr_vectors = dev->nr_queues + 1;
	snprintf(vp->name, sizeof(vp->name), "%s", dev->name);
	pthread_mutex_init(&vp->lock, NULL);
	for (v = 0; v < VPCI_MAX_VECTORS; v++) {
		vp->vec[v].gsi = -1;
		vp->vec[v].fd = -1;
		vp->table[v].ctrl = MSIX_ENTRY_MASKED;
	}
	for (v = 0; v < vp->nr_vectors; v++) {
		vp->vec[v].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vp->vec[v].fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: eventfd: %s", dev->name,
				 strerror(-ret));
			goto err_fds;
		}
	}
	transport_reset(vp);

	pci_dev_init(&vp->pci, vp->name, PCI_VENDOR_REDHAT_QUMRANET,
		     0x1040 + dev->device_id, class_of(dev->device_id), 1);
	vp->pci.slot = sc->slot;
	vp->pci.func = sc->func;
	vp->pci.opaque = vp;
	vp->pci.cfg_written = cfg_written;
	vp->pci.cfg_reading = cfg_reading;
	vp->pci.bar_moved = bar_moved;
	vp->pci.cfg[PCI_SUBSYS_VENDOR] = PCI_VENDOR_REDHAT_QUMRANET & 0xff;
	vp->pci.cfg[PCI_SUBSYS_VENDOR + 1] = PCI_VENDOR_REDHAT_QUMRANET >> 8;
	vp->pci.cfg[PCI_SUBSYS_ID] = 0x40;
	/* INTA#, routed as the DSDT's _PRT and the MP table say. */
	vp->intx_gsi = 16 + (sc->slot % 8);
	vp->pci.cfg[PCI_INTERRUPT_PIN] = 1;
	vp->pci.cfg[PCI_INTERRUPT_LINE] = vp->intx_gsi;
	pci_dev_add_bar(&vp->pci, VPCI_BAR, PCI_BAR_MEM64, VPCI_BAR_SIZE,
			bar_access, vp);
	ret = add_caps(vp);
	if (ret) {
		snprintf(err, errlen, "%s: PCI capabilities do not fit",
			 dev->name);
		goto err_fds;
	}
	dev->transport = &vpci_transport;
	dev->transport_priv = vp;
	ret = pci_bus_add(&m->pci, &vp->pci);
	if (ret) {
		snprintf(err, errlen, "-s %u:%u,%s: PCI slot taken", sc->slot,
			 sc->func, sc->emulation);
		goto err_fds;
	}
	ret = machine_on_close(m, vpci_close, vp);
	if (ret) {
		snprintf(err, errlen, "%s: out of memory", dev->name);
		return ret;
	}
	return 0;

err_fds:
	for (v = 0; v < vp->nr_vectors; v++)
		if (vp->vec[v].fd >= 0)
			close(vp->vec[v].fd);
	free(vp);
	return ret;
}
