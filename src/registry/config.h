/*
 * config.h - `berth registry` configuration: YAML file (libyaml) overlaid by
 * command-line flags. See docs/registry.md for the file format.
 *
 * Ownership: a registry_config owns every string and array in it; free with
 * registry_config_free(). Patterns are fnmatch(3) globs.
 */
#ifndef BERTH_REGISTRY_CONFIG_H
#define BERTH_REGISTRY_CONFIG_H

#include "common/error.h"

enum registry_action {
	REGISTRY_PULL = 1 << 0,
	REGISTRY_PUSH = 1 << 1,
	REGISTRY_DELETE = 1 << 2,
	REGISTRY_ALL = REGISTRY_PULL | REGISTRY_PUSH | REGISTRY_DELETE,
};

/* Per-repository settings, matched by glob on the repository name (first match wins). */
struct registry_repo_rule {
	char *pattern;
	bool public_pull;             /* anonymous pull allowed */
	bool immutable_tags;          /* a tag, once pushed, cannot point elsewhere */
	int64_t expire_untagged_days; /* lifecycle: < 0 disables */
	char *keep_tags_pattern;      /* lifecycle: with keep_tags_count >= 0 */
	int64_t keep_tags_count;
};

/*
 * Embedding (berth server's ECR, docs/ecr.md): callbacks into the process that
 * runs the registry. Every member may be NULL. Not settable from YAML.
 */
struct registry_hooks {
	/* Basic credentials: 0 accepted (the caller may do everything), -EACCES refused. */
	int (*check_basic)(void *data, const char *user, const char *password);
	/* Before a push (upload start, manifest PUT): 0, or -ENOENT when the repository does not exist. */
	int (*push_check)(void *data, const char *repo);
	/* Whether the repository's tags are immutable (a pushed tag never moves). */
	bool (*tag_immutable)(void *data, const char *repo);
	/* After a manifest was stored (tag NULL for a push by digest). */
	void (*manifest_pushed)(void *data, const char *repo, const char *tag, const char *digest);
};

/* Grant `actions` on repositories matching `repository` to `user` ("*" = any authenticated user). */
struct registry_acl {
	char *user;
	char *repository;
	unsigned actions;
};

struct registry_config {
	char *root;      /* storage root */
	char *host;      /* listen address, default 127.0.0.1 */
	uint16_t port;   /* 0 = any free port */
	char *port_file; /* write the bound port here (tests) */
	char *tls_cert, *tls_key;
	unsigned threads;           /* worker threads running requests (0: 64); an upload holds one */
	bool thread_per_connection; /* obsolete, accepted and ignored (requests always run on workers) */
	unsigned max_connections;
	unsigned timeout_s;     /* idle/slow connection timeout */
	unsigned body_min_rate; /* bytes/s a request body must average after timeout_s (slow loris) */
	bool access_log;
	bool delete_enabled;
	bool fsync; /* storage.fsync: fsync blobs/manifests before acknowledging (default true) */
	int64_t upload_expiry_s;
	int64_t manifest_max;
	int64_t blob_max; /* largest blob an upload may grow to */
	int64_t gc_grace_s;
	unsigned shutdown_timeout_s;

	char *htpasswd;
	bool token_enabled;
	char *token_key; /* PEM EC P-256 private key; generated when missing */
	char *token_issuer, *token_service, *token_realm;
	int64_t token_ttl_s;
	struct registry_acl *acl;
	size_t n_acl;

	struct registry_repo_rule *rules;
	size_t n_rules;

	char *proxy_url; /* pull-through cache upstream, or NULL */
	char *proxy_user, *proxy_password;
	int64_t proxy_tag_ttl_s; /* revalidate cached tags older than this upstream */

	const struct registry_hooks *hooks; /* borrowed; NULL when standalone */
	void *hooks_data;
};

/* Defaults; root from $BERTH_ROOT/registry or /var/lib/berth/registry. Never fails. */
void registry_config_init(struct registry_config *c);
void registry_config_done(struct registry_config *c);

/* Overlay a YAML file. -errno with the failing key or line in *err. */
int registry_config_load(struct registry_config *c, const char *path, struct berth_error **err);
/* Same from a buffer (tests, fuzzing). */
int registry_config_parse(struct registry_config *c, const char *buf, size_t len, struct berth_error **err);

/* "pull,push" -> flags. -EINVAL on an unknown word. */
int registry_parse_actions(const char *s, unsigned *ret);

/* The rule for repository `name`, or NULL. */
const struct registry_repo_rule *registry_config_rule(const struct registry_config *c, const char *name);

/* "host:port", "[v6]:port", ":port" or "port". */
int registry_parse_addr(const char *s, char **ret_host, uint16_t *ret_port);

#endif
