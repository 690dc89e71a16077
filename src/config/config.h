/*
 * The run's configuration, filled once from the HyperKit/bhyve command line
 * (and later from the JSON config file and the API) and then only read.
 * Each -s becomes a struct slot_config; each device parses its own conf
 * string when it is created (src/devices/registry.c).
 *
 * The parsers are pure functions that return 0 or -EINVAL and, on error,
 * fill a message naming the option and what was expected: main.c prints
 * it as the one line of a bad-argument exit.
 */
#ifndef KHYVE_CONFIG_CONFIG_H
#define KHYVE_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

#define CONFIG_MAX_SLOTS 256
#define CONFIG_MAX_VCPUS 255
#define CONFIG_DEFAULT_MEM (256ULL << 20)
#define CONFIG_ERR_LEN 256
#define CONFIG_MAX_OWNED (CONFIG_MAX_SLOTS + 8)

struct slot_config {
	unsigned int slot, func;
	const char *emulation;
	const char *conf; /* NULL when absent */
};

enum boot_kind { BOOT_NONE, BOOT_KEXEC, BOOT_BOOTROM };

struct config {
	uint64_t mem_size;
	unsigned int nr_vcpus;
	bool acpi;          /* -A */
	bool utc;           /* -u */
	bool ignore_msrs;   /* -w */
	bool single_msi;    /* -W */
	bool x2apic;        /* -x */
	bool no_mptable;    /* -Y */
	const char *pidfile;
	bool have_uuid;
	uint8_t uuid[16];
	const char *com[2]; /* -l com1/com2 backend specs */
	struct slot_config slots[CONFIG_MAX_SLOTS];
	unsigned int nr_slots;
	enum boot_kind boot;
	const char *kernel, *initrd, *cmdline; /* kexec */
	const char *bootrom;
	const char *state_dir;
	const char *api_sock;
	const char *config_file;
	bool no_api;
	bool show_version;
	bool show_help;
	char *owned[CONFIG_MAX_OWNED]; /* copies of split arguments */
	unsigned int nr_owned;
};

/* Parse argv into @cfg (defaults first). 0 or -EINVAL with @err filled. */
int config_parse_args(struct config *cfg, int argc, char **argv, char *err,
		      size_t errlen) __must_check;
void config_free(struct config *cfg);

/* "512M", "2g", "1024" (MiB), "65536K"; 0 or -EINVAL. */
int config_parse_size(const char *s, uint64_t *out) __must_check;
/* "4", "4:1", "0:4:1" → slot and function; 0 or -EINVAL with @err. */
int config_parse_slot(const char *s, unsigned int *slot, unsigned int *func,
		      char *err, size_t errlen) __must_check;
/* RFC 4122 text form; 0 or -EINVAL. */
int config_parse_uuid(const char *s, uint8_t uuid[16]) __must_check;
/* The usage text. */
const char *config_usage(void);

#endif
