/*
 * The virtio 1.x PCI transport (virtio 1.2 §4.1), modern only: vendor
 * capabilities for the common, notify, ISR and device config structures in
 * one 64-bit memory BAR, MSI-X (table and PBA in the same BAR) with INTx as
 * the fallback, or one plain MSI vector with -W. Queue notifications are
 * KVM ioeventfds on the notify addresses, writing the device's kick_fd
 * without a user-space exit; MSI-X vectors are KVM MSI routes fed by irqfd.
 */
#ifndef KHYVE_VIRTIO_VIRTIO_PCI_H
#define KHYVE_VIRTIO_VIRTIO_PCI_H

#include <stddef.h>

#include "virtio/virtio.h"

struct machine;
struct slot_config;

/*
 * Put @dev on the PCI bus at the slot/function of @sc. The device must
 * have been set up with virtio_dev_init(). 0 or -errno with @err.
 */
int virtio_pci_add(struct machine *m, const struct slot_config *sc,
		   struct virtio_dev *dev, char *err, size_t errlen) __must_check;

#endif
