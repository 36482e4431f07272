/*
 * config.h - AWS client configuration as the aws CLI and botocore resolve it:
 * the shared credentials file (~/.aws/credentials, AWS_SHARED_CREDENTIALS_FILE),
 * the config file (~/.aws/config, AWS_CONFIG_FILE), the AWS_* environment and
 * command-line flags, each with botocore's precedence (see aws_config_resolve()).
 *
 * Pure: files are read through the caller's environment lookup and paths, so
 * the unit tests and the fuzz target drive it without touching $HOME.
 */
#ifndef BERTH_AWS_CONFIG_H
#define BERTH_AWS_CONFIG_H

#include <stddef.h>

#include "common/error.h"

/* Largest credentials or config file we read (real ones are a few hundred bytes). */
#define AWS_INI_MAX_SIZE     (1u << 20)
/* Longest line, section name or key we accept. */
#define AWS_INI_MAX_LINE     4096
/* The region and endpoint when nothing configures them: `berth server`'s defaults. */
#define AWS_DEFAULT_REGION   "us-east-1"
#define AWS_DEFAULT_ENDPOINT "https://127.0.0.1:7443"

/*
 * A parsed INI file in botocore's dialect: "[section]" headers, "key = value"
 * (or "key: value") lines, whole-line comments starting with '#' or ';',
 * blank lines. Indented lines after a key with an empty value are a nested
 * block ("s3 =\n  max_concurrent_requests = 10"); they are kept as that
 * key's raw value. Section names are case-sensitive, keys are lowercased
 * (Python's configparser), values trimmed. A repeated section or a repeated
 * key within a section is an error, as botocore's strict parser makes it.
 */
struct aws_ini;

/*
 * Parse text (len bytes, need not be NUL-terminated). -EINVAL with
 * "line N: ..." on a line that is neither, a key before any section, an
 * empty or unterminated section name, a repeated section or key, a NUL
 * byte, or a line longer than
 * AWS_INI_MAX_LINE; -EFBIG beyond AWS_INI_MAX_SIZE. *ret set only on success.
 */
int aws_ini_parse(const char *text, size_t len, struct aws_ini **ret, struct berth_error **err);
/* Read and parse path; -ENOENT (with a message) when it does not exist. */
int aws_ini_load(const char *path, struct aws_ini **ret, struct berth_error **err);
/* Value of key in section, or NULL. Borrowed from ini. */
const char *aws_ini_get(const struct aws_ini *ini, const char *section, const char *key);
/* Whether the section exists (possibly empty). */
bool aws_ini_has_section(const struct aws_ini *ini, const char *section);
struct aws_ini *aws_ini_free(struct aws_ini *ini);
static inline void aws_ini_freep(struct aws_ini **p)
{
	*p = aws_ini_free(*p);
}
#define _cleanup_aws_ini_ _cleanup_(aws_ini_freep)

/* What command-line flags set; NULL members were not given. */
struct aws_config_flags {
	const char *profile;   /* --profile */
	const char *region;    /* --region */
	const char *endpoint;  /* --endpoint / --endpoint-url */
	const char *ca_bundle; /* --ca-bundle */
};

/* The resolved configuration. Every string is owned; free with aws_config_done(). */
struct aws_config {
	char *profile;
	char *access_key, *secret_key, *session_token; /* session_token may be NULL */
	char *region;
	char *endpoint;                 /* URL */
	char *ca_bundle;                /* NULL: the system's trust store */
	const char *credentials_source; /* "env", "shared credentials file" or "config file" (static) */
};

typedef const char *(*aws_getenv_fn)(const char *name, void *ctx);

/*
 * Resolve, with botocore's precedence:
 *   profile:     flags->profile, AWS_PROFILE, AWS_DEFAULT_PROFILE, "default"
 *   credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) unless
 *                --profile was given; then the profile's section of the credentials file
 *                ([NAME]), then of the config file ([profile NAME], or [default])
 *   region:      flags->region, AWS_REGION, AWS_DEFAULT_REGION, the profile's "region",
 *                AWS_DEFAULT_REGION (the macro)
 *   endpoint:    flags->endpoint, AWS_ENDPOINT_URL_<SERVICE> (service_env, e.g. "ECS"),
 *                AWS_ENDPOINT_URL, the profile's "endpoint_url", AWS_DEFAULT_ENDPOINT
 *   CA bundle:   flags->ca_bundle, AWS_CA_BUNDLE, the profile's "ca_bundle"
 * Files: AWS_SHARED_CREDENTIALS_FILE or $HOME/.aws/credentials, AWS_CONFIG_FILE or
 * $HOME/.aws/config; a missing file is empty, a malformed one an error (naming the file).
 *
 * Errors (-EINVAL, -ENOENT): a profile named explicitly that neither file has;
 * partial credentials (a key id without a secret or the reverse, naming what is
 * missing); no credentials at all. *ret is filled only on success.
 */
int aws_config_resolve(const struct aws_config_flags *flags, const char *service_env, aws_getenv_fn env,
		       void *env_ctx, struct aws_config *ret, struct berth_error **err);
void aws_config_done(struct aws_config *c);

#endif
