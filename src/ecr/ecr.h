/*
 * ecr.h - the parts of berth's Amazon ECR API that are pure logic, below the
 * server's awsJson handler (src/server/ecr.c) and the registry
 * (src/registry/): registry tokens, lifecycle policies, version comparison,
 * package inventories and matching against an OSV vulnerability feed.
 * See docs/ecr.md.
 *
 * Everything here is deterministic: "now" is always a parameter (the server
 * passes its clock, tests a fixed value), nothing touches the network.
 */
#ifndef BERTH_ECR_ECR_H
#define BERTH_ECR_ECR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* ------------------------------------------------------------------------ */
/* Registry tokens (GetAuthorizationToken)                                  */
/* ------------------------------------------------------------------------ */

#define ECR_TOKEN_KEY_SIZE 32
/* ECR's tokens last 12 hours. */
#define ECR_TOKEN_TTL      (12 * 3600)

/* The HMAC key tokens are signed with, derived from the cluster's secret access key. */
void ecr_token_key(const char *secret, unsigned char key[ECR_TOKEN_KEY_SIZE]);

/*
 * The registry password for account, valid until `expires` (epoch seconds):
 * "b1.<expires>.<account>.<hex HMAC-SHA256 over "b1.<expires>.<account>">".
 * No ':' inside (docker's Basic credentials split on the first one). Caller frees.
 */
char *ecr_token_issue(const unsigned char key[ECR_TOKEN_KEY_SIZE], const char *account, int64_t expires);

/*
 * Check a password: 0 when it was issued with key for account and `now` is
 * before its expiry; -EACCES (tampered, malformed, another account) or
 * -ETIME (expired). Constant-time comparison of the MAC.
 */
int ecr_token_verify(const unsigned char key[ECR_TOKEN_KEY_SIZE], const char *account, const char *password,
		     int64_t now);

/* ------------------------------------------------------------------------ */
/* Version comparison                                                       */
/* ------------------------------------------------------------------------ */

/* dpkg's rules ([epoch:]upstream[-revision], '~' sorts before everything): <0, 0, >0. */
int ecr_dpkg_version_cmp(const char *a, const char *b);
/* apk-tools' rules (1.2.3a_rc1_p2-r4: digits, letter, suffixes, revision): <0, 0, >0. */
int ecr_apk_version_cmp(const char *a, const char *b);

/* ------------------------------------------------------------------------ */
/* Lifecycle policies                                                       */
/* ------------------------------------------------------------------------ */

enum ecr_tag_status { ECR_TAGGED, ECR_UNTAGGED, ECR_ANY };
enum ecr_count_type { ECR_COUNT_MORE_THAN, ECR_SINCE_PUSHED };

struct ecr_rule {
	int64_t priority;
	enum ecr_tag_status tag_status;
	char **prefixes; /* tagPrefixList (NULL-terminated) or NULL */
	char **patterns; /* tagPatternList ('*' wildcards) or NULL */
	enum ecr_count_type count_type;
	int64_t count; /* images (imageCountMoreThan) or days (sinceImagePushed) */
};

struct ecr_policy {
	struct ecr_rule *rules; /* sorted by priority */
	size_t n_rules;
};

/*
 * Parse and validate ECR's lifecycle policy JSON. -EINVAL with *ret_msg
 * (caller frees) naming the rule and the field ("rule 2: selection.countUnit
 * is required with sinceImagePushed").
 */
int ecr_policy_parse(const char *text, size_t len, struct ecr_policy **ret, char **ret_msg);
struct ecr_policy *ecr_policy_free(struct ecr_policy *p);

struct ecr_image {
	const char *digest;
	const char *const *tags; /* n_tags entries */
	size_t n_tags;
	double pushed_at; /* epoch seconds */
};

/*
 * ECR's evaluation: rules in priority order; a rule selects the images that
 * match its tag status and prefixes/patterns (every prefix must match one of
 * the image's tags), counts them newest first (imageCountMoreThan keeps the
 * newest `count`) or by age (sinceImagePushed: older than `count` days
 * before now) and expires the rest, except images an earlier rule selected
 * (an image is expired by at most one rule, and never by a rule of lower
 * priority than one that selected it). ret_rule[i] = the priority of the rule
 * expiring images[i], or 0.
 */
void ecr_policy_evaluate(const struct ecr_policy *p, const struct ecr_image *images, size_t n, double now,
			 int64_t *ret_rule);

/* ------------------------------------------------------------------------ */
/* Package inventory and vulnerability matching                             */
/* ------------------------------------------------------------------------ */

enum ecr_pkg_kind { ECR_PKG_DPKG, ECR_PKG_APK };

struct ecr_package {
	char *name;    /* binary package */
	char *source;  /* source/origin package (what OSV's Debian and Alpine feeds name), or NULL */
	char *version; /* installed version */
	enum ecr_pkg_kind kind;
};

struct ecr_inventory {
	char *os_id;         /* os-release ID ("debian", "alpine", "ubuntu"), or NULL */
	char *os_version_id; /* VERSION_ID ("12", "3.19.1"), or NULL */
	struct ecr_package *pkgs;
	size_t n_pkgs;
};

void ecr_inventory_done(struct ecr_inventory *inv);
/* os-release(5) KEY=value lines (quotes and backslash escapes). -EINVAL with *ret_msg on a bad line. */
int ecr_parse_os_release(struct ecr_inventory *inv, const char *buf, size_t len, char **ret_msg);
/*
 * dpkg's status file (deb822 stanzas): packages whose Status ends in
 * "installed". -EINVAL with *ret_msg (line number) on a malformed stanza.
 */
int ecr_parse_dpkg_status(struct ecr_inventory *inv, const char *buf, size_t len, char **ret_msg);
/* apk's installed database (P:, V:, o: lines, blank line between packages). */
int ecr_parse_apk_installed(struct ecr_inventory *inv, const char *buf, size_t len, char **ret_msg);

/*
 * The files an inventory is made of, read from an image's layers (each a
 * tar, gzip or zstd stream: libarchive) in order, the last layer holding a
 * file winning and whiteouts deleting: etc/os-release (or usr/lib/os-release),
 * var/lib/dpkg/status, lib/apk/db/installed. -EBADMSG on a corrupt layer.
 */
int ecr_inventory_from_layers(const int *fds, size_t n, struct ecr_inventory *inv, struct berth_error **err);

/* An OSV feed: every advisory of a directory of OSV JSON files. */
struct ecr_feed;
struct ecr_feed *ecr_feed_new(void);
struct ecr_feed *ecr_feed_free(struct ecr_feed *f);
/*
 * Add the advisories of one OSV document (one object, or an array of
 * objects). -EINVAL with *ret_msg naming the field when it is not OSV.
 */
int ecr_feed_add(struct ecr_feed *f, const char *buf, size_t len, char **ret_msg);
size_t ecr_feed_count(const struct ecr_feed *f);
/*
 * Load every *.json file of dir (files that fail to parse are skipped and
 * named in *ret_skipped, a new array of strings, may be NULL).
 */
int ecr_feed_load_dir(const char *dir, struct ecr_feed **ret, json_t **ret_skipped, struct berth_error **err);
/* A fingerprint of dir's *.json files (names, sizes, mtimes): reload when it changes. Caller frees. */
char *ecr_feed_dir_stamp(const char *dir);

/*
 * Match an inventory: ECR's findings array, one per (advisory, package):
 * {"name": id, "description", "uri", "severity": CRITICAL|HIGH|MEDIUM|LOW|
 * INFORMATIONAL|UNDEFINED, "attributes": [{"key": "package_name"},
 * {"key": "package_version"}, {"key": "fixed_version"} (when fixed),
 * {"key": "package_manager"}]}, sorted by severity then name.
 */
json_t *ecr_feed_match(const struct ecr_feed *f, const struct ecr_inventory *inv);

#endif
