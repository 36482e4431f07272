/*
 * test-ecr.c - src/ecr: registry tokens, dpkg/apk version order, lifecycle
 * policies (parsing refusals and ECR's evaluation rules), inventories and OSV
 * matching, layers read with libarchive.
 */
#include "unit.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/util.h"
#include "ecr/ecr.h"

static void test_token(void **state)
{
	(void)state;
	unsigned char key[ECR_TOKEN_KEY_SIZE], other[ECR_TOKEN_KEY_SIZE];
	ecr_token_key("secret", key);
	ecr_token_key("secret2", other);
	char *t = ecr_token_issue(key, "123456789012", 1000);
	assert_null(strchr(t, ':'));
	assert_int_equal(ecr_token_verify(key, "123456789012", t, 999), 0);
	assert_int_equal(ecr_token_verify(key, "123456789012", t, 1000), -ETIME);
	assert_int_equal(ecr_token_verify(other, "123456789012", t, 999), -EACCES);
	assert_int_equal(ecr_token_verify(key, "123456789013", t, 999), -EACCES);
	/* tamper with the expiry: the MAC no longer matches */
	char *bad = xstrdup(t);
	bad[3] = '9';
	assert_int_equal(ecr_token_verify(key, "123456789012", bad, 999), -EACCES);
	bad[strlen(bad) - 1] ^= 1;
	assert_int_equal(ecr_token_verify(key, "123456789012", bad, 999), -EACCES);
	assert_int_equal(ecr_token_verify(key, "123456789012", "", 0), -EACCES);
	assert_int_equal(ecr_token_verify(key, "123456789012", "b1.", 0), -EACCES);
	assert_int_equal(ecr_token_verify(key, "123456789012", NULL, 0), -EACCES);
	free(bad);
	free(t);
}

static void test_dpkg_versions(void **state)
{
	(void)state;
	static const struct {
		const char *a, *b;
		int want;
	} V[] = {
		{ "1.0", "1.0", 0 },
		{ "1.0", "1.1", -1 },
		{ "1.0~rc1", "1.0", -1 },
		{ "1.0", "1.0+b1", -1 },
		{ "1:0.9", "2.0", 1 },
		{ "2.0-1", "2.0-1~deb12u1", 1 },
		{ "3.0.11-1~deb12u2", "3.0.11-1~deb12u1", 1 },
		{ "1.2.3-4", "1.2.3-10", -1 },
		{ "1.02", "1.2", 0 },
		{ "1.0a", "1.0", 1 },
		{ "1.0-", "1.0", 0 },
		{ "0:1.0", "1.0", 0 },
		{ "2.36-9+deb12u3", "2.36-9+deb12u4", -1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(V); i++) {
		int r = ecr_dpkg_version_cmp(V[i].a, V[i].b);
		if ((r > 0) - (r < 0) != V[i].want)
			fail_msg("dpkg %s vs %s: got %d, want %d", V[i].a, V[i].b, r, V[i].want);
		r = ecr_dpkg_version_cmp(V[i].b, V[i].a);
		if ((r > 0) - (r < 0) != -V[i].want)
			fail_msg("dpkg %s vs %s (reversed): got %d", V[i].b, V[i].a, r);
	}
}

static void test_apk_versions(void **state)
{
	(void)state;
	static const struct {
		const char *a, *b;
		int want;
	} V[] = {
		{ "1.2.3-r0", "1.2.3-r0", 0 },   { "1.2.3-r0", "1.2.3-r1", -1 },
		{ "1.2.3", "1.2.3-r1", -1 },     { "1.2", "1.2.1", -1 },
		{ "1.2_rc1", "1.2", -1 },        { "1.2_alpha", "1.2_beta", -1 },
		{ "1.2_p1", "1.2", 1 },          { "1.2a", "1.2", 1 },
		{ "1.2a", "1.2b", -1 },          { "1.10", "1.9", 1 },
		{ "3.1.4-r5", "3.1.4-r10", -1 }, { "1.2_rc1", "1.2.1", -1 },
		{ "1.2.1", "1.2a", 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(V); i++) {
		int r = ecr_apk_version_cmp(V[i].a, V[i].b);
		if (r != V[i].want)
			fail_msg("apk %s vs %s: got %d, want %d", V[i].a, V[i].b, r, V[i].want);
		r = ecr_apk_version_cmp(V[i].b, V[i].a);
		if (r != -V[i].want)
			fail_msg("apk %s vs %s (reversed): got %d", V[i].b, V[i].a, r);
	}
}

static void expect_policy_refused(const char *text, const char *needle)
{
	struct ecr_policy *p = NULL;
	char *msg = NULL;
	if (ecr_policy_parse(text, strlen(text), &p, &msg) == 0)
		fail_msg("accepted %s", text);
	assert_null(p);
	if (!strstr(msg, needle))
		fail_msg("message '%s' does not mention '%s'", msg, needle);
	free(msg);
}

#define RULE(prio, sel) "{\"rulePriority\":" #prio ",\"selection\":" sel ",\"action\":{\"type\":\"expire\"}}"

static void test_policy_refusals(void **state)
{
	(void)state;
	expect_policy_refused("", "not valid JSON");
	expect_policy_refused("[]", "JSON object");
	expect_policy_refused("{\"rules\":[]}", "1 to 100 rules");
	expect_policy_refused("{\"rules\":[],\"x\":1}", "unknown field 'x'");
	expect_policy_refused("{\"rules\":[1]}", "rules[0] must be an object");
	expect_policy_refused("{\"rules\":[{\"selection\":{}}]}", "rulePriority");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"countType\":\"imageCountMoreThan\",\"countNumber\":1}") "]}",
	    "tagStatus is required");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"tagStatus\":\"some\",\"countType\":\"imageCountMoreThan\","
				   "\"countNumber\":1}") "]}",
	    "is not tagged, untagged or any");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"tagStatus\":\"tagged\",\"countType\":\"imageCountMoreThan\","
				   "\"countNumber\":1}") "]}",
	    "needs selection.tagPrefixList");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"tagStatus\":\"untagged\",\"tagPrefixList\":[\"v\"],"
				   "\"countType\":\"imageCountMoreThan\",\"countNumber\":1}") "]}",
	    "only allowed with tagStatus tagged");
	expect_policy_refused("{\"rules\":[" RULE(1,
						  "{\"tagStatus\":\"any\",\"countType\":\"sinceImagePushed\","
						  "\"countNumber\":1}") "]}",
			      "countUnit is required");
	expect_policy_refused("{\"rules\":[" RULE(1,
						  "{\"tagStatus\":\"any\",\"countType\":\"sinceImagePushed\","
						  "\"countUnit\":\"hours\",\"countNumber\":1}") "]}",
			      "must be 'days'");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\","
				   "\"countUnit\":\"days\",\"countNumber\":1}") "]}",
	    "not allowed with imageCountMoreThan");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\","
				   "\"countNumber\":0}") "]}",
	    "countNumber");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\","
				   "\"countNumber\":1,\"bogus\":1}") "]}",
	    "selection.bogus");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\","
				   "\"countNumber\":1}") "," RULE(1, "{\"tagStatus\":\"untagged\","
								     "\"countType\":\"imageCountMoreThan\","
								     "\"countNumber\":1}") "]}",
	    "used by more than one rule");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\","
				   "\"countNumber\":1}") "," RULE(2, "{\"tagStatus\":\"untagged\","
								     "\"countType\":\"imageCountMoreThan\","
								     "\"countNumber\":1}") "]}",
	    "highest rulePriority");
	expect_policy_refused(
	    "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\",\"countType\":"
	    "\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":\"delete\"}}]}",
	    "action");
	expect_policy_refused(
	    "{\"rules\":[" RULE(1, "{\"tagStatus\":\"tagged\",\"tagPrefixList\":[],"
				   "\"countType\":\"imageCountMoreThan\",\"countNumber\":1}") "]}",
	    "non-empty list");
}

static struct ecr_policy *policy(const char *text)
{
	struct ecr_policy *p = NULL;
	char *msg = NULL;
	if (ecr_policy_parse(text, strlen(text), &p, &msg) < 0)
		fail_msg("refused: %s", msg);
	return p;
}

#define DAY 86400.0

static void test_policy_evaluate(void **state)
{
	(void)state;
	static const char *const prod1[] = { "prod-1" }, *const prod2[] = { "prod-2", "latest" },
				 *const prod3[] = { "prod-3" }, *const dev1[] = { "dev-1" };
	const struct ecr_image imgs[] = {
		{ "sha256:1", prod1, 1, 1 * DAY }, { "sha256:2", prod2, 2, 2 * DAY },
		{ "sha256:3", prod3, 1, 3 * DAY }, { "sha256:4", dev1, 1, 4 * DAY },
		{ "sha256:5", NULL, 0, 5 * DAY },  { "sha256:6", NULL, 0, 6 * DAY },
	};
	int64_t rule[6];
	/* keep the 2 newest prod images; expire untagged older than 3 days; then keep 1 of anything */
	struct ecr_policy *p = policy("{\"rules\":[" RULE(
	    1,
	    "{\"tagStatus\":\"tagged\",\"tagPrefixList\":[\"prod\"],\"countType\":"
	    "\"imageCountMoreThan\",\"countNumber\":2}") "," RULE(2, "{\"tagStatus\":\"untagged\","
								     "\"countType\":\"sinceImagePushed\","
								     "\"countUnit\":\"days\",\"countNumber\":"
								     "3}") "," RULE(3, "{\"tagStatus\":"
										       "\"any\","
										       "\"countType\":"
										       "\"imageCountMoreThan"
										       "\",\"countNumber\":"
										       "1}") "]}");
	ecr_policy_evaluate(p, imgs, 6, 8.5 * DAY, rule);
	assert_int_equal(rule[0], 1); /* prod-1: third newest prod */
	assert_int_equal(rule[1], 0); /* prod-2, prod-3 kept by rule 1, protected from rule 3 */
	assert_int_equal(rule[2], 0);
	assert_int_equal(rule[3], 3); /* dev-1: only rule 3 selects it, and 6 is newer */
	assert_int_equal(rule[4], 2); /* untagged, 3.5 days old */
	assert_int_equal(rule[5], 0); /* untagged 2.5 days: rule 2 keeps it and protects it */
	ecr_policy_free(p);

	/* every prefix of the list must match one tag; patterns use '*' */
	p = policy("{\"rules\":[" RULE(1, "{\"tagStatus\":\"tagged\",\"tagPrefixList\":[\"prod\",\"lat\"],"
					  "\"countType\":\"imageCountMoreThan\",\"countNumber\":1}") "]}");
	ecr_policy_evaluate(p, imgs, 6, 8.5 * DAY, rule);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(rule[i], 0); /* only prod-2 has both, and one is kept */
	ecr_policy_free(p);
	p = policy("{\"rules\":[" RULE(
	    1, "{\"tagStatus\":\"tagged\",\"tagPatternList\":[\"*-1\"],"
	       "\"countType\":\"sinceImagePushed\",\"countUnit\":\"days\",\"countNumber\":4}") "]}");
	ecr_policy_evaluate(p, imgs, 6, 8.5 * DAY, rule);
	assert_int_equal(rule[0], 1);
	assert_int_equal(rule[3], 1);
	assert_int_equal(rule[1] + rule[2] + rule[4] + rule[5], 0);
	ecr_policy_free(p);
}

static void expect_parse_refused(int (*fn)(struct ecr_inventory *, const char *, size_t, char **),
				 const char *text, const char *needle)
{
	struct ecr_inventory inv = { 0 };
	char *msg = NULL;
	if (fn(&inv, text, strlen(text), &msg) == 0)
		fail_msg("accepted '%s'", text);
	if (!strstr(msg, needle))
		fail_msg("message '%s' does not mention '%s'", msg, needle);
	free(msg);
	ecr_inventory_done(&inv);
}

static const char DPKG_STATUS[] =
    "Package: libssl3\nStatus: install ok installed\nPriority: optional\nSource: openssl\n"
    "Version: 3.0.11-1~deb12u1\nDescription: SSL\n multi-line\n .\n more\n\n"
    "Package: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
    "Package: zlib1g\nStatus: install ok installed\nSource: zlib (1:1.2.13.dfsg-1)\nVersion: "
    "1:1.2.13.dfsg-1+b1\n";

static void test_inventory_parsers(void **state)
{
	(void)state;
	struct ecr_inventory inv = { 0 };
	char *msg = NULL;
	assert_int_equal(ecr_parse_dpkg_status(&inv, DPKG_STATUS, strlen(DPKG_STATUS), &msg), 0);
	assert_int_equal(inv.n_pkgs, 2);
	assert_string_equal(inv.pkgs[0].name, "libssl3");
	assert_string_equal(inv.pkgs[0].source, "openssl");
	assert_string_equal(inv.pkgs[0].version, "3.0.11-1~deb12u1");
	assert_string_equal(inv.pkgs[1].source, "zlib");
	assert_string_equal(inv.pkgs[1].version, "1:1.2.13.dfsg-1");
	static const char APK[] =
	    "C:Q1abc=\nP:musl\nV:1.2.4-r1\no:musl\n\nP:libcrypto3\nV:3.1.4-r0\no:openssl\n";
	assert_int_equal(ecr_parse_apk_installed(&inv, APK, strlen(APK), &msg), 0);
	assert_int_equal(inv.n_pkgs, 4);
	assert_string_equal(inv.pkgs[3].source, "openssl");
	assert_int_equal(inv.pkgs[3].kind, ECR_PKG_APK);
	static const char OS[] = "# comment\nNAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n\n";
	assert_int_equal(ecr_parse_os_release(&inv, OS, strlen(OS), &msg), 0);
	assert_string_equal(inv.os_id, "debian");
	assert_string_equal(inv.os_version_id, "12");
	ecr_inventory_done(&inv);

	expect_parse_refused(ecr_parse_dpkg_status, "Package: a\nnot a field\n", "line 2");
	expect_parse_refused(ecr_parse_dpkg_status, "Status: install ok installed\nVersion: 1\n",
			     "no Package");
	expect_parse_refused(ecr_parse_dpkg_status, "Package: a\nStatus: install ok installed\n",
			     "no Version");
	expect_parse_refused(ecr_parse_dpkg_status, "Package: a\nPackage: b\n", "repeated");
	expect_parse_refused(ecr_parse_apk_installed, "P:a\nV:1\nbogus\n", "line 3");
	expect_parse_refused(ecr_parse_apk_installed, "P:a\n\n", "without V:");
	expect_parse_refused(ecr_parse_os_release, "ID=debian\nno equals\n", "line 2");
	expect_parse_refused(ecr_parse_os_release, "ID=\"debian\n", "unterminated");
	expect_parse_refused(ecr_parse_os_release, "I D=x\n", "invalid key");
}

static const char FEED[] =
    "[{\"id\":\"DSA-1\",\"summary\":\"openssl "
    "bug\",\"references\":[{\"type\":\"ADVISORY\",\"url\":\"https://x/1\"}],"
    "\"affected\":[{\"package\":{\"ecosystem\":\"Debian:12\",\"name\":\"openssl\"},\"ranges\":[{\"type\":"
    "\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},{\"fixed\":\"3.0.11-1~deb12u2\"}]}],"
    "\"database_specific\":{\"severity\":\"high\"}}]},"
    "{\"id\":\"DSA-2\",\"affected\":[{\"package\":{\"ecosystem\":\"Debian:11\",\"name\":\"openssl\"},"
    "\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},{\"fixed\":\"9\"}]}]}]},"
    "{\"id\":\"DSA-3\",\"affected\":[{\"package\":{\"ecosystem\":\"Debian:12\",\"name\":\"zlib\"},"
    "\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},{\"fixed\":\"1:1.2.13.dfsg-1\"}]}"
    "]}]},"
    "{\"id\":\"ALPINE-1\",\"severity\":[{\"type\":\"CVSS_V3\",\"score\":\"9.8\"}],\"affected\":[{\"package\":"
    "{\"ecosystem\":\"Alpine:v3.19\",\"name\":\"openssl\"},\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":"
    "[{\"introduced\":\"3.1.0-r0\"},{\"fixed\":\"3.1.4-r1\"}]}]}]},"
    "{\"id\":\"DSA-4\",\"affected\":[{\"package\":{\"ecosystem\":\"Debian\",\"name\":\"zlib\"},"
    "\"versions\":[\"1:1.2.13.dfsg-1\"],\"ecosystem_specific\":{\"severity\":\"low\"}}]}]";

static void expect_feed_refused(const char *text, const char *needle)
{
	struct ecr_feed *f = ecr_feed_new();
	char *msg = NULL;
	if (ecr_feed_add(f, text, strlen(text), &msg) == 0)
		fail_msg("accepted %s", text);
	assert_int_equal(ecr_feed_count(f), 0);
	if (!strstr(msg, needle))
		fail_msg("message '%s' does not mention '%s'", msg, needle);
	free(msg);
	ecr_feed_free(f);
}

static const char *attr_value(json_t *finding, const char *key)
{
	size_t i;
	json_t *a;
	json_array_foreach (json_object_get(finding, "attributes"), i, a)
		if (streq(json_string_value(json_object_get(a, "key")), key))
			return json_string_value(json_object_get(a, "value"));
	return NULL;
}

static void test_feed_match(void **state)
{
	(void)state;
	struct ecr_feed *f = ecr_feed_new();
	char *msg = NULL;
	assert_int_equal(ecr_feed_add(f, FEED, strlen(FEED), &msg), 0);
	assert_int_equal(ecr_feed_count(f), 5);
	struct ecr_inventory inv = { 0 };
	static const char OS[] = "ID=debian\nVERSION_ID=\"12\"\n";
	assert_int_equal(ecr_parse_os_release(&inv, OS, strlen(OS), &msg), 0);
	assert_int_equal(ecr_parse_dpkg_status(&inv, DPKG_STATUS, strlen(DPKG_STATUS), &msg), 0);
	json_t *found = ecr_feed_match(f, &inv);
	json_t *none = ecr_feed_match(f, &(struct ecr_inventory){ 0 }); /* nothing installed: nothing found */
	assert_int_equal(json_array_size(none), 0);
	json_decref(none);
	assert_int_equal(json_array_size(found),
			 2); /* DSA-1 (openssl) and DSA-4 (zlib); DSA-3 fixed, DSA-2 other release */
	json_t *a = json_array_get(found, 0), *b = json_array_get(found, 1);
	assert_string_equal(json_string_value(json_object_get(a, "name")), "DSA-1");
	assert_string_equal(json_string_value(json_object_get(a, "severity")), "HIGH");
	assert_string_equal(json_string_value(json_object_get(a, "uri")), "https://x/1");
	assert_string_equal(attr_value(a, "package_name"), "libssl3");
	assert_string_equal(attr_value(a, "package_version"), "3.0.11-1~deb12u1");
	assert_string_equal(attr_value(a, "fixed_version"), "3.0.11-1~deb12u2");
	assert_string_equal(json_string_value(json_object_get(b, "name")), "DSA-4");
	assert_string_equal(json_string_value(json_object_get(b, "severity")), "LOW");
	assert_null(attr_value(b, "fixed_version"));
	json_decref(found);
	ecr_inventory_done(&inv);

	/* alpine: apk order, the origin name, release v3.19 against VERSION_ID 3.19.1 */
	static const char AOS[] = "ID=alpine\nVERSION_ID=3.19.1\n";
	static const char APK[] = "P:libcrypto3\nV:3.1.4-r0\no:openssl\n\nP:libssl3\nV:3.1.4-r1\no:openssl\n";
	assert_int_equal(ecr_parse_os_release(&inv, AOS, strlen(AOS), &msg), 0);
	assert_int_equal(ecr_parse_apk_installed(&inv, APK, strlen(APK), &msg), 0);
	found = ecr_feed_match(f, &inv);
	assert_int_equal(json_array_size(found), 1);
	a = json_array_get(found, 0);
	assert_string_equal(json_string_value(json_object_get(a, "severity")), "CRITICAL");
	assert_string_equal(attr_value(a, "package_name"), "libcrypto3");
	assert_string_equal(attr_value(a, "fixed_version"), "3.1.4-r1");
	json_decref(found);
	ecr_inventory_done(&inv);
	ecr_feed_free(f);

	expect_feed_refused("{", "not valid JSON");
	expect_feed_refused("{\"summary\":\"x\"}", "needs a string \"id\"");
	expect_feed_refused("[{\"id\":\"a\"},{\"id\":1}]", "needs a string \"id\"");
	expect_feed_refused("{\"id\":\"a\",\"affected\":{}}", "affected must be a list");
	expect_feed_refused("{\"id\":\"a\",\"affected\":[{\"package\":{\"name\":\"x\"}}]}", "package needs");
	expect_feed_refused(
	    "{\"id\":\"a\",\"affected\":[{\"package\":{\"ecosystem\":\"Debian\",\"name\":\"x\"},"
	    "\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"fixed\":\"1\",\"introduced\":\"0\"}]}]}]}",
	    "exactly one event");
	expect_feed_refused(
	    "{\"id\":\"a\",\"affected\":[{\"package\":{\"ecosystem\":\"Debian\",\"name\":\"x\"},"
	    "\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":[{\"broken\":\"1\"}]}]}]}",
	    "unknown event");
	expect_feed_refused(
	    "{\"id\":\"a\",\"affected\":[{\"package\":{\"ecosystem\":\"Debian\",\"name\":\"x\"},"
	    "\"versions\":[1]}]}",
	    "versions[0]");
}

/* A gzip tar layer holding the given (path, content) pairs. */
static int make_layer(const char *dir, const char *name, const char *const *entries, size_t n)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, name);
	struct archive *a = archive_write_new();
	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, entries[2 * i]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)strlen(entries[2 * i + 1]));
		archive_write_header(a, e);
		archive_write_data(a, entries[2 * i + 1], strlen(entries[2 * i + 1]));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void test_layers(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = unit_tmpdir();
	const char *l1[] = { "etc/os-release", "ID=debian\nVERSION_ID=11\n", "var/lib/dpkg/status",
			     "Package: old\nStatus: install ok installed\nVersion: 1\n" };
	const char *l2[] = { "./etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n", "var/lib/dpkg/.wh.status",
			     "" };
	const char *l3[] = { "lib/apk/db/installed", "P:busybox\nV:1.36.1-r5\n" };
	int fds[3] = { make_layer(dir, "1.tgz", l1, 2), make_layer(dir, "2.tgz", l2, 2),
		       make_layer(dir, "3.tgz", l3, 1) };
	struct ecr_inventory inv = { 0 };
	struct berth_error *err = NULL;
	assert_int_equal(ecr_inventory_from_layers(fds, 3, &inv, &err), 0);
	assert_string_equal(inv.os_version_id, "12");
	assert_int_equal(inv.n_pkgs, 1); /* the dpkg status was whited out */
	assert_string_equal(inv.pkgs[0].name, "busybox");
	ecr_inventory_done(&inv);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	/* a corrupt layer is an error, not an empty inventory */
	_cleanup_free_ char *bad = xasprintf("%s/bad", dir);
	int fd = open(bad, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_int_equal(write(fd, "\x1f\x8b\x08\x00garbage", 11), 11);
	close(fd);
	fd = open(bad, O_RDONLY | O_CLOEXEC);
	assert_true(ecr_inventory_from_layers(&fd, 1, &inv, &err) < 0);
	berth_error_free(err);
	close(fd);
	ecr_inventory_done(&inv);
	_cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token),           cmocka_unit_test(test_dpkg_versions),
		cmocka_unit_test(test_apk_versions),    cmocka_unit_test(test_policy_refusals),
		cmocka_unit_test(test_policy_evaluate), cmocka_unit_test(test_inventory_parsers),
		cmocka_unit_test(test_feed_match),      cmocka_unit_test(test_layers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
