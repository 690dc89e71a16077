/* Disk -s conf parsing: bhyve's and HyperKit's forms, good and bad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "block/blk.h"

static char err[256];

static void parse_ok(const char *conf, struct blk_conf *c)
{
	err[0] = '\0';
	if (blk_conf_parse(conf, c, err, sizeof(err)))
		fail_msg("'%s': %s", conf, err);
}

static void parse_bad(const char *conf, const char *needle)
{
	struct blk_conf c;

	err[0] = '\0';
	assert_int_equal(blk_conf_parse(conf, &c, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("'%s': message '%s' lacks '%s'", conf, err, needle);
	blk_conf_free(&c);
}

static void defaults(void **state)
{
	struct blk_conf c;

	(void)state;
	parse_ok("/tmp/disk.img", &c);
	assert_string_equal(c.opts.path, "/tmp/disk.img");
	assert_false(c.opts.read_only);
	assert_false(c.opts.nocache);
	assert_false(c.opts.sync);
	assert_true(c.opts.discard);
	assert_int_equal(c.opts.engine, BLK_ENGINE_AUTO);
	assert_int_equal(c.opts.format, BLK_FORMAT_AUTO);
	assert_int_equal(c.opts.logical_block, 0);
	blk_conf_free(&c);
}

static void bhyve_options(void **state)
{
	struct blk_conf c;

	(void)state;
	parse_ok("disk.img,ro,nocache,direct,sectorsize=4096,format=raw,"
		 "discard=off,engine=sync",
		 &c);
	assert_string_equal(c.opts.path, "disk.img");
	assert_true(c.opts.read_only);
	assert_true(c.opts.nocache);
	assert_true(c.opts.sync);
	assert_false(c.opts.discard);
	assert_int_equal(c.opts.engine, BLK_ENGINE_SYNC);
	assert_int_equal(c.opts.format, BLK_FORMAT_RAW);
	assert_int_equal(c.opts.logical_block, 4096);
	assert_int_equal(c.opts.physical_block, 4096);
	blk_conf_free(&c);

	parse_ok("d,sectorsize=512/4096,format=qcow2,engine=uring,sync", &c);
	assert_int_equal(c.opts.logical_block, 512);
	assert_int_equal(c.opts.physical_block, 4096);
	assert_int_equal(c.opts.format, BLK_FORMAT_QCOW2);
	assert_int_equal(c.opts.engine, BLK_ENGINE_URING);
	assert_true(c.opts.sync);
	blk_conf_free(&c);

	parse_ok("d,nodelete,discard=on", &c);
	assert_true(c.opts.discard);
	blk_conf_free(&c);
	parse_ok("d,discard=on,nodelete", &c);
	assert_false(c.opts.discard);
	blk_conf_free(&c);
}

static void hyperkit_uri(void **state)
{
	struct blk_conf c;

	(void)state;
	/* Docker Desktop's command line. */
	parse_ok("file:///Users/me/Docker.raw?sync=os&buffered=1,format=qcow,"
		 "qcow-config=discard=true;compact_after_unmaps=262144;"
		 "keep_erased=262144;runtime_asserts=false",
		 &c);
	assert_string_equal(c.opts.path, "/Users/me/Docker.raw");
	assert_false(c.opts.nocache);
	assert_true(c.opts.discard);
	assert_int_equal(c.opts.format, BLK_FORMAT_QCOW2);
	blk_conf_free(&c);

	parse_ok("file:///var/my%20disk.img?sync=1&buffered=0", &c);
	assert_string_equal(c.opts.path, "/var/my disk.img");
	assert_true(c.opts.nocache);
	assert_int_equal(c.opts.format, BLK_FORMAT_AUTO);
	blk_conf_free(&c);

	parse_ok("file://d.qcow2,format=qcow,qcow-config=discard=false;"
		 "read_only=true",
		 &c);
	assert_string_equal(c.opts.path, "d.qcow2");
	assert_false(c.opts.discard);
	assert_true(c.opts.read_only);
	blk_conf_free(&c);

	parse_ok("file:///d.img,ro", &c);
	assert_true(c.opts.read_only);
	blk_conf_free(&c);
}

static void bad(void **state)
{
	(void)state;
	parse_bad(NULL, "path is required");
	parse_bad("", "path is required");
	parse_bad(",ro", "path is required");
	parse_bad("d,frobnicate", "unknown disk option 'frobnicate'");
	parse_bad("d,ro=1", "unknown disk option 'ro'");
	parse_bad("d,sectorsize=1000", "sectorsize");
	parse_bad("d,sectorsize=256", "sectorsize");
	parse_bad("d,sectorsize=4096/512", "sectorsize");
	parse_bad("d,sectorsize=512/131072", "sectorsize");
	parse_bad("d,sectorsize=", "sectorsize");
	parse_bad("d,sectorsize=512x", "sectorsize");
	parse_bad("d,sectorsize=99999999999999999999", "sectorsize");
	parse_bad("d,format=vmdk", "'vmdk'");
	parse_bad("d,discard=maybe", "'maybe'");
	parse_bad("d,engine=aio", "'aio'");
	parse_bad("file://", "no path");
	parse_bad("file://?sync=1", "no path");
	parse_bad("file:///d?cache=none", "'cache'");
	parse_bad("file:///d?buffered=2", "'buffered'");
	parse_bad("file:///d?sync", "'sync'");
	parse_bad("file:///d,qcow-config=frob=1", "'frob'");
	parse_bad("file:///d,qcow-config=discard=perhaps", "perhaps");
	parse_bad("file:///d,qcow-config=discard", "'discard'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults),
		cmocka_unit_test(bhyve_options),
		cmocka_unit_test(hyperkit_uri),
		cmocka_unit_test(bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
