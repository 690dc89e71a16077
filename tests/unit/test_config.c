/* The command-line grammars: sizes, slots, UUIDs, -s/-l/-f parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "config/config.h"

static void sizes(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(config_parse_size("512M", &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(config_parse_size("2g", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(config_parse_size("1024", &v), 0);
	assert_int_equal(v, 1024ULL << 20);
	assert_int_equal(config_parse_size("65536K", &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(config_parse_size("1T", &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(config_parse_size("1GB", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(config_parse_size("12Q", &v), -EINVAL);
	assert_int_equal(config_parse_size("", &v), -EINVAL);
	assert_int_equal(config_parse_size("-1G", &v), -EINVAL);
	assert_int_equal(config_parse_size("G", &v), -EINVAL);
	assert_int_equal(config_parse_size("1GiBx", &v), -EINVAL);
	assert_int_equal(config_parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(config_parse_size("99999999999T", &v), -EINVAL);
}

static void slots(void **state)
{
	unsigned int s, f;
	char err[128];

	(void)state;
	assert_int_equal(config_parse_slot("4", &s, &f, err, sizeof(err)), 0);
	assert_int_equal(s, 4);
	assert_int_equal(f, 0);
	assert_int_equal(config_parse_slot("4:1", &s, &f, err, sizeof(err)), 0);
	assert_int_equal(f, 1);
	assert_int_equal(config_parse_slot("0:31:7", &s, &f, err, sizeof(err)), 0);
	assert_int_equal(s, 31);
	assert_int_equal(f, 7);
	assert_int_equal(config_parse_slot("32", &s, &f, err, sizeof(err)), -EINVAL);
	assert_int_equal(config_parse_slot("0:8", &s, &f, err, sizeof(err)), -EINVAL);
	assert_int_equal(config_parse_slot("1:0:0", &s, &f, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bus 0"));
	assert_int_equal(config_parse_slot("a", &s, &f, err, sizeof(err)), -EINVAL);
	assert_int_equal(config_parse_slot("1:2:3:4", &s, &f, err, sizeof(err)), -EINVAL);
	assert_int_equal(config_parse_slot("", &s, &f, err, sizeof(err)), -EINVAL);
}

static void uuids(void **state)
{
	static const uint8_t want[16] = { 0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad,
					  0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0,
					  0x4f, 0xd4, 0x30, 0xc8 };
	uint8_t u[16];

	(void)state;
	assert_int_equal(config_parse_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8", u), 0);
	assert_memory_equal(u, want, 16);
	assert_int_equal(config_parse_uuid("6BA7B810-9DAD-11D1-80B4-00C04FD430C8", u), 0);
	assert_memory_equal(u, want, 16);
	assert_int_equal(config_parse_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c", u), -EINVAL);
	assert_int_equal(config_parse_uuid("6ba7b810x9dad-11d1-80b4-00c04fd430c8", u), -EINVAL);
	assert_int_equal(config_parse_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430cg", u), -EINVAL);
}

static int parse(struct config *cfg, char *err, ...)
{
	char *argv[32] = { "khyve" };
	int argc = 1, r;
	va_list ap;
	char *a;

	va_start(ap, err);
	while ((a = va_arg(ap, char *)) != NULL)
		argv[argc++] = a;
	va_end(ap);
	r = config_parse_args(cfg, argc, argv, err, CONFIG_ERR_LEN);
	if (r)
		config_free(cfg); /* what was split before the error */
	return r;
}

static void args(void **state)
{
	char err[CONFIG_ERR_LEN];
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, err, "-A", "-u", "-c", "2", "-m", "1G",
			       "-s", "0:0,hostbridge", "-s", "31,lpc",
			       "-s", "2:1,virtio-blk,/tmp/x.img,ro",
			       "-l", "com1,autopty=/tmp/tty,log=/tmp/l",
			       "-f", "kexec,/k,/i,console=ttyS0 a=b,c", NULL), 0);
	assert_true(cfg.acpi && cfg.utc);
	assert_int_equal(cfg.nr_vcpus, 2);
	assert_int_equal(cfg.mem_size, 1ULL << 30);
	assert_int_equal(cfg.nr_slots, 3);
	assert_string_equal(cfg.slots[2].emulation, "virtio-blk");
	assert_string_equal(cfg.slots[2].conf, "/tmp/x.img,ro");
	assert_int_equal(cfg.slots[2].func, 1);
	assert_null(cfg.slots[0].conf);
	assert_string_equal(cfg.com[0], "autopty=/tmp/tty,log=/tmp/l");
	assert_int_equal(cfg.boot, BOOT_KEXEC);
	assert_string_equal(cfg.kernel, "/k");
	assert_string_equal(cfg.initrd, "/i");
	/* The command line keeps its commas. */
	assert_string_equal(cfg.cmdline, "console=ttyS0 a=b,c");
	config_free(&cfg);

	assert_int_equal(parse(&cfg, err, "-f", "kexec,/k,,", NULL), 0);
	assert_string_equal(cfg.initrd, "");
	assert_string_equal(cfg.cmdline, "");
	config_free(&cfg);

	assert_int_equal(parse(&cfg, err, "-l", "bootrom,/fw.bin", NULL), 0);
	assert_int_equal(cfg.boot, BOOT_BOOTROM);
	assert_string_equal(cfg.bootrom, "/fw.bin");
	config_free(&cfg);
}

static void bad_args(void **state)
{
	char err[CONFIG_ERR_LEN];
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, err, "-Z", NULL), -EINVAL);
	assert_non_null(strstr(err, "-Z"));
	assert_int_equal(parse(&cfg, err, "--frobnicate", NULL), -EINVAL);
	assert_non_null(strstr(err, "--frobnicate"));
	assert_int_equal(parse(&cfg, err, "-m", "63M", NULL), -EINVAL);
	assert_non_null(strstr(err, "-m 63M"));
	assert_int_equal(parse(&cfg, err, "-m", "65537K", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-c", "0", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-c", "x", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-s", "3,virtio-rnd", "-s", "3:0,virtio-rnd",
			       NULL), -EINVAL);
	assert_non_null(strstr(err, "used twice"));
	assert_int_equal(parse(&cfg, err, "-s", "3", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-l", "com3,stdio", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-l", "com1", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-l", "com1,tcp=1", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-l", "com1,stdio", "-l", "com1,null",
			       NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-l", "com1,stdio,bogus=1", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-f", "kexec", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-f", "bios,/x", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-f", "bootrom,/a", "-f", "bootrom,/b",
			       NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-U", "nope", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, err, "-m", NULL), -EINVAL);
	assert_non_null(strstr(err, "needs an argument"));
	assert_int_equal(parse(&cfg, err, "stray", NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes),
		cmocka_unit_test(slots),
		cmocka_unit_test(uuids),
		cmocka_unit_test(args),
		cmocka_unit_test(bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
