/*
 * Command-line parsing; see config.h. The grammar is HyperKit's (xhyve's
 * man page) and bhyve's (bhyve(8)): -s slot[:func],emulation[,conf] and
 * -l comN,backend[,log=FILE], plus khyve's long options.
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/console.h"
#include "core/guest_mem.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__printf(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int config_parse_size(const char *s, uint64_t *out)
{
	uint64_t v, shift = 20;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		break;
	case 'k':
		shift = 10;
		break;
	case 'm':
		shift = 20;
		break;
	case 'g':
		shift = 30;
		break;
	case 't':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1] && !(tolower((unsigned char)end[1]) == 'b' && !end[2]))
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int parse_uint(const char *s, unsigned int max, unsigned int *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int config_parse_slot(const char *s, unsigned int *slot, unsigned int *func,
		      char *err, size_t errlen)
{
	char buf[32], *parts[3], *p = buf;
	unsigned int n = 0, bus = 0;

	if (strlen(s) >= sizeof(buf))
		return fail(err, errlen, "-s %s: bad slot", s);
	strcpy(buf, s);
	while (n < 3 && (parts[n] = strsep(&p, ":")) != NULL)
		n++;
	if (p)
		return fail(err, errlen, "-s %s: expected slot[:func] or bus:slot:func", s);
	*func = 0;
	if (n == 3) {
		if (parse_uint(parts[0], 255, &bus))
			return fail(err, errlen, "-s %s: bad bus number", s);
		if (bus)
			return fail(err, errlen, "-s %s: only PCI bus 0 is supported", s);
		parts[0] = parts[1];
		parts[1] = parts[2];
		n = 2;
	}
	if (parse_uint(parts[0], 31, slot))
		return fail(err, errlen, "-s %s: slot must be 0-31", s);
	if (n == 2 && parse_uint(parts[1], 7, func))
		return fail(err, errlen, "-s %s: function must be 0-7", s);
	return 0;
}

int config_parse_uuid(const char *s, uint8_t uuid[16])
{
	static const int dash[] = { 8, 13, 18, 23 };
	int i, j = 0, d = 0;

	if (strlen(s) != 36)
		return -EINVAL;
	for (i = 0; i < 36; i++) {
		if (d < 4 && i == dash[d]) {
			if (s[i] != '-')
				return -EINVAL;
			d++;
			continue;
		}
		if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]))
			return -EINVAL;
		uuid[j++] = (uint8_t)strtoul((char[]){ s[i], s[i + 1], 0 }, NULL, 16);
		i++;
	}
	return j == 16 ? 0 : -EINVAL;
}

/* A private copy of @s to split in place, freed by config_free(). */
static char *keep(struct config *cfg, const char *s)
{
	char *copy;

	if (cfg->nr_owned == CONFIG_MAX_OWNED)
		return NULL;
	copy = strdup(s);
	if (copy)
		cfg->owned[cfg->nr_owned++] = copy;
	return copy;
}

static int parse_boot(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	char *s = keep(cfg, arg), *p = s, *kind;

	if (!s)
		return fail(err, errlen, "out of memory");
	if (cfg->boot != BOOT_NONE)
		return fail(err, errlen, "-f given twice");
	kind = strsep(&p, ",");
	if (!strcmp(kind, "kexec")) {
		/* kexec,KERNEL,INITRD,CMDLINE: the command line may hold commas. */
		cfg->kernel = strsep(&p, ",");
		cfg->initrd = strsep(&p, ",");
		cfg->cmdline = p ? p : "";
		if (!cfg->kernel || !*cfg->kernel)
			return fail(err, errlen, "-f kexec,KERNEL,INITRD,CMDLINE: "
						 "the kernel path is missing");
		if (!cfg->initrd)
			cfg->initrd = "";
		cfg->boot = BOOT_KEXEC;
		return 0;
	}
	if (!strcmp(kind, "bootrom")) {
		if (!p || !*p)
			return fail(err, errlen, "-f bootrom,FILE: the file is missing");
		cfg->bootrom = p;
		cfg->boot = BOOT_BOOTROM;
		return 0;
	}
	return fail(err, errlen, "-f %s: expected kexec,KERNEL,INITRD,CMDLINE "
				 "or bootrom,FILE", arg);
}

static int parse_lpc(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	const char *why = NULL;
	const char *spec = strchr(arg, ',');
	size_t n = spec ? (size_t)(spec - arg) : strlen(arg);
	int com;

	if (n == 7 && !strncmp(arg, "bootrom", 7)) {
		/* bhyve spells firmware "-l bootrom,FILE". */
		char buf[4096];

		snprintf(buf, sizeof(buf), "bootrom%s", spec ? spec : "");
		return parse_boot(cfg, buf, err, errlen);
	}
	if (n == 4 && !strncmp(arg, "com1", 4))
		com = 0;
	else if (n == 4 && !strncmp(arg, "com2", 4))
		com = 1;
	else
		return fail(err, errlen, "-l %s: expected com1 or com2", arg);
	if (!spec || !spec[1])
		return fail(err, errlen, "-l %.*s: a backend is missing (stdio, "
					 "autopty, socket=PATH, /dev/..., null)",
			    (int)n, arg);
	if (cfg->com[com])
		return fail(err, errlen, "-l com%d given twice", com + 1);
	if (console_check_spec(spec + 1, &why))
		return fail(err, errlen, "-l %s: %s", arg, why);
	cfg->com[com] = spec + 1;
	return 0;
}

static int parse_pci(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	char *s = keep(cfg, arg), *p = s, *slot;
	struct slot_config *sc;
	unsigned int i;
	int r;

	if (!s)
		return fail(err, errlen, "out of memory");
	if (cfg->nr_slots == CONFIG_MAX_SLOTS)
		return fail(err, errlen, "-s %s: too many devices", arg);
	sc = &cfg->slots[cfg->nr_slots];
	slot = strsep(&p, ",");
	r = config_parse_slot(slot, &sc->slot, &sc->func, err, errlen);
	if (r)
		return r;
	sc->emulation = strsep(&p, ",");
	if (!sc->emulation || !*sc->emulation)
		return fail(err, errlen, "-s %s: expected slot,emulation[,conf]", arg);
	sc->conf = p;
	for (i = 0; i < cfg->nr_slots; i++)
		if (cfg->slots[i].slot == sc->slot && cfg->slots[i].func == sc->func)
			return fail(err, errlen, "-s %s: PCI slot %u:%u is used twice",
				    arg, sc->slot, sc->func);
	cfg->nr_slots++;
	return 0;
}

enum { OPT_STATE_DIR = 256, OPT_API_SOCK, OPT_CONFIG_FILE, OPT_NO_API,
       OPT_VERSION, OPT_HELP };

static const struct option long_options[] = {
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
	{ "no-api", no_argument, NULL, OPT_NO_API },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse_one(struct config *cfg, int c, const char *arg, char *err,
		     size_t errlen)
{
	unsigned int n;

	switch (c) {
	case 'A': cfg->acpi = true; break;
	case 'u': cfg->utc = true; break;
	case 'H': case 'P': break; /* KVM never spins on HLT or PAUSE */
	case 'w': cfg->ignore_msrs = true; break;
	case 'W': cfg->single_msi = true; break;
	case 'x': cfg->x2apic = true; break;
	case 'Y': cfg->no_mptable = true; break;
	case 'v': case OPT_VERSION: cfg->show_version = true; break;
	case 'h': case OPT_HELP: cfg->show_help = true; break;
	case 'c':
		if (parse_uint(arg, CONFIG_MAX_VCPUS, &n) || !n)
			return fail(err, errlen, "-c %s: expected a number of vCPUs "
						 "from 1 to %d", arg, CONFIG_MAX_VCPUS);
		cfg->nr_vcpus = n;
		break;
	case 'm':
		if (config_parse_size(arg, &cfg->mem_size))
			return fail(err, errlen, "-m %s: expected a size such as "
						 "512M or 2G (no suffix: MiB)", arg);
		if (cfg->mem_size < GUEST_MEM_MIN || cfg->mem_size > GUEST_MEM_MAX)
			return fail(err, errlen, "-m %s: memory must be between "
						 "64M and 1T", arg);
		if (cfg->mem_size % 4096)
			return fail(err, errlen, "-m %s: memory must be a multiple "
						 "of 4K", arg);
		break;
	case 'F': cfg->pidfile = arg; break;
	case 'U':
		if (config_parse_uuid(arg, cfg->uuid))
			return fail(err, errlen, "-U %s: expected a UUID like "
				    "6ba7b810-9dad-11d1-80b4-00c04fd430c8", arg);
		cfg->have_uuid = true;
		break;
	case 'l': return parse_lpc(cfg, arg, err, errlen);
	case 's': return parse_pci(cfg, arg, err, errlen);
	case 'f': return parse_boot(cfg, arg, err, errlen);
	case OPT_STATE_DIR: cfg->state_dir = arg; break;
	case OPT_API_SOCK: cfg->api_sock = arg; break;
	case OPT_CONFIG_FILE: cfg->config_file = arg; break;
	case OPT_NO_API: cfg->no_api = true; break;
	default:
		return -EINVAL;
	}
	return 0;
}

int config_parse_args(struct config *cfg, int argc, char **argv, char *err,
		      size_t errlen)
{
	int c, r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = CONFIG_DEFAULT_MEM;
	cfg->nr_vcpus = 1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":AuhHPvwWxYc:m:F:U:l:s:f:",
				long_options, NULL)) != -1) {
		if (c == '?') {
			if (optopt)
				return fail(err, errlen, "unknown option -%c "
					    "(khyve -h lists them)", optopt);
			return fail(err, errlen, "unknown option %s (khyve -h "
				    "lists them)", argv[optind - 1]);
		}
		if (c == ':')
			return fail(err, errlen, "option %s needs an argument",
				    argv[optind - 1]);
		r = parse_one(cfg, c, optarg, err, errlen);
		if (r)
			return r;
	}
	if (optind < argc)
		return fail(err, errlen, "unexpected argument '%s' (khyve -h "
			    "lists the options)", argv[optind]);
	return 0;
}

void config_free(struct config *cfg)
{
	while (cfg->nr_owned)
		free(cfg->owned[--cfg->nr_owned]);
}

const char *config_usage(void)
{
	return "Usage: khyve [-AuhHPvwWxY] [-c vcpus] [-m size] [-F pidfile] [-U uuid]\n"
	       "             [-l comN,backend[,log=FILE]]... [-s slot,emulation[,conf]]...\n"
	       "             -f kexec,KERNEL,INITRD,\"CMDLINE\" | -f bootrom,FILE\n"
	       "\n"
	       "  -A            generate ACPI tables\n"
	       "  -c N          number of vCPUs (default 1)\n"
	       "  -m SIZE       guest memory, K/M/G/T suffix, no suffix = MiB (default 256M)\n"
	       "  -F FILE       write the process id to FILE (created exclusively)\n"
	       "  -U UUID       SMBIOS system UUID\n"
	       "  -u            RTC keeps UTC\n"
	       "  -H, -P        accepted (HLT and PAUSE never spin a host CPU under KVM)\n"
	       "  -w            ignore unknown MSRs instead of injecting #GP\n"
	       "  -W            single-vector MSI\n"
	       "  -x            expose x2APIC\n"
	       "  -Y            no MP table\n"
	       "  -l comN,BACKEND[,log=FILE]\n"
	       "                stdio | autopty[=LINK] | socket=PATH | /dev/... | null\n"
	       "  -s SLOT[:FUNC],EMULATION[,CONF]\n"
	       "                hostbridge, lpc, virtio-blk, ahci-hd, virtio-net,\n"
	       "                virtio-vpnkit, virtio-sock, virtio-vsock, virtio-rnd,\n"
	       "                virtio-9p, virtio-balloon\n"
	       "  -f kexec,KERNEL,INITRD,CMDLINE   boot Linux directly\n"
	       "  -f bootrom,FILE                  boot firmware mapped below 4 GiB\n"
	       "  --state-dir DIR   pid, resolved configuration, tty link, console log\n"
	       "  --api-sock PATH   Firecracker-compatible API socket\n"
	       "  --config-file F   Firecracker-compatible JSON configuration\n"
	       "  -v, --version     print the version\n"
	       "  -h, --help        print this help\n"
	       "\n"
	       "Exit status: 0 powered off or halted, 1 error, 2 rebooted, 3 triple fault.\n";
}
