/*
 * config.c - the aws CLI's configuration files and environment (see config.h).
 *
 * The INI parser follows Python's configparser as botocore uses it (strict:
 * duplicates are errors, keys lowercased, whole-line comments only) rather
 * than a lenient INI dialect, so a file berth accepts means the same thing
 * to the aws CLI. Files are tiny; a section is a flat array of pairs.
 */
#include <ctype.h>

#include <fcntl.h>

#include "aws/config.h"
#include "common/fs.h"
#include "common/strbuf.h"

struct ini_section {
	char *name;
	char **kv; /* key, value, key, value, ..., NULL */
	size_t n;  /* pairs */
};

struct aws_ini {
	struct ini_section *sec;
	size_t n;
};

struct aws_ini *aws_ini_free(struct aws_ini *ini)
{
	if (!ini)
		return NULL;
	for (size_t i = 0; i < ini->n; i++) {
		free(ini->sec[i].name);
		strv_free(ini->sec[i].kv);
	}
	free(ini->sec);
	free(ini);
	return NULL;
}

static const struct ini_section *find_section(const struct aws_ini *ini, const char *name)
{
	for (size_t i = 0; ini && i < ini->n; i++)
		if (streq(ini->sec[i].name, name))
			return &ini->sec[i];
	return NULL;
}

bool aws_ini_has_section(const struct aws_ini *ini, const char *section)
{
	return find_section(ini, section) != NULL;
}

const char *aws_ini_get(const struct aws_ini *ini, const char *section, const char *key)
{
	const struct ini_section *s = find_section(ini, section);
	for (size_t i = 0; s && i < s->n; i++)
		if (streq(s->kv[2 * i], key))
			return s->kv[2 * i + 1];
	return NULL;
}

static char *trimmed(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

static void section_add(struct ini_section *s, char *key, char *value)
{
	s->kv = xrealloc(s->kv, (2 * s->n + 3) * sizeof(char *));
	s->kv[2 * s->n] = key;
	s->kv[2 * s->n + 1] = value;
	s->n++;
	s->kv[2 * s->n] = NULL;
}

/* One line (no newline, n <= AWS_INI_MAX_LINE). cur: the current section or NULL. */
static int parse_line(struct aws_ini *ini, const char *line, size_t n, size_t lineno,
		      struct ini_section **cur, bool *continuable, struct berth_error **err)
{
	size_t lead = 0;
	while (lead < n && (line[lead] == ' ' || line[lead] == '\t'))
		lead++;
	if (lead == n || line[lead] == '#' || line[lead] == ';')
		return 0; /* blank or comment: a nested block may continue after it */
	if (lead > 0 && *cur && *continuable && (*cur)->n > 0) {
		/* nested block or continuation of the last key's value */
		char **v = &(*cur)->kv[2 * (*cur)->n - 1];
		_cleanup_free_ char *t = trimmed(line, n);
		char *joined = xasprintf("%s%s%s", *v, **v ? "\n" : "", t);
		free(*v);
		*v = joined;
		return 0;
	}
	if (line[lead] == '[') {
		const char *close = memrchr(line, ']', n);
		_cleanup_free_ char *name =
		    close ? trimmed(line + lead + 1, (size_t)(close - line - lead - 1)) : NULL;
		if (!close || !*name)
			return berth_error_msg(err, EINVAL, "line %zu: malformed section header", lineno);
		if (find_section(ini, name))
			return berth_error_msg(err, EINVAL, "line %zu: section '%s' already exists", lineno,
					       name);
		ini->sec = xrealloc(ini->sec, (ini->n + 1) * sizeof(*ini->sec));
		ini->sec[ini->n] = (struct ini_section){ .name = TAKE_PTR(name) };
		*cur = &ini->sec[ini->n++];
		*continuable = false;
		return 0;
	}
	size_t sep = 0; /* line is not NUL-terminated: bounded search for the first '=' or ':' */
	while (sep < n && line[sep] != '=' && line[sep] != ':')
		sep++;
	if (sep >= n || sep == lead)
		return berth_error_msg(err, EINVAL, "line %zu: expected 'key = value' or '[section]'",
				       lineno);
	if (!*cur)
		return berth_error_msg(err, EINVAL, "line %zu: key outside of any section", lineno);
	char *key = trimmed(line, sep);
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (size_t i = 0; i < (*cur)->n; i++)
		if (streq((*cur)->kv[2 * i], key)) {
			int r = berth_error_msg(err, EINVAL, "line %zu: key '%s' repeated in section '%s'",
						lineno, key, (*cur)->name);
			free(key);
			return r;
		}
	section_add(*cur, key, trimmed(line + sep + 1, n - sep - 1));
	*continuable = true;
	return 0;
}

int aws_ini_parse(const char *text, size_t len, struct aws_ini **ret, struct berth_error **err)
{
	if (len > AWS_INI_MAX_SIZE)
		return berth_error_msg(err, EFBIG, "file larger than %u bytes", AWS_INI_MAX_SIZE);
	if (memchr(text, '\0', len))
		return berth_error_msg(err, EINVAL, "file contains a NUL byte");
	struct aws_ini *ini = xcalloc(1, sizeof(*ini));
	struct ini_section *cur = NULL;
	bool continuable = false;
	size_t lineno = 0;
	for (size_t at = 0; at < len;) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - text - at) : len - at;
		lineno++;
		size_t eff = n && text[at + n - 1] == '\r' ? n - 1 : n;
		int r = eff > AWS_INI_MAX_LINE
			    ? berth_error_msg(err, EINVAL, "line %zu: longer than %d bytes", lineno,
					      AWS_INI_MAX_LINE)
			    : parse_line(ini, text + at, eff, lineno, &cur, &continuable, err);
		if (r < 0) {
			aws_ini_free(ini);
			return r;
		}
		at += n + (nl ? 1 : 0);
	}
	*ret = ini;
	return 0;
}

int aws_ini_load(const char *path, struct aws_ini **ret, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = fs_read_file_at(AT_FDCWD, path, AWS_INI_MAX_SIZE + 1, &sb, err);
	if (r < 0)
		return r;
	r = aws_ini_parse(sb.buf, sb.len, ret, err);
	if (r < 0)
		return berth_error_wrap(err, r, "parse '%s'", path);
	return 0;
}

void aws_config_done(struct aws_config *c)
{
	free(c->profile);
	free(c->access_key);
	free(c->secret_key);
	free(c->session_token);
	free(c->region);
	free(c->endpoint);
	free(c->ca_bundle);
	*c = (struct aws_config){ 0 };
}

static const char *env_get(aws_getenv_fn env, void *ctx, const char *name)
{
	const char *v = env(name, ctx);
	return v && *v ? v : NULL;
}

static const char *first(const char *a, const char *b)
{
	return a ? a : b;
}

/* Load the file named by env var `var`, or $HOME/.aws/<base>; absent: *ret NULL. */
static int load_file(aws_getenv_fn env, void *ctx, const char *var, const char *base, struct aws_ini **ret,
		     struct berth_error **err)
{
	const char *path = env_get(env, ctx, var);
	const char *home = env_get(env, ctx, "HOME");
	_cleanup_free_ char *p = path ? xstrdup(path) : home ? xasprintf("%s/.aws/%s", home, base) : NULL;
	*ret = NULL;
	if (!p)
		return 0;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = aws_ini_load(p, ret, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(e);
		return berth_error_msg(err, -r, "%s", m);
	}
	return 0;
}

struct profile_src {
	const struct aws_ini *creds, *conf;
	const char *conf_section; /* "default" or "profile NAME" */
	const char *name;
};

/* A profile's setting: credentials file first (only for credential keys), then config. */
static const char *profile_get(const struct profile_src *p, const char *key, bool creds_file)
{
	const char *v = creds_file ? aws_ini_get(p->creds, p->name, key) : NULL;
	if (!v)
		v = aws_ini_get(p->conf, p->conf_section, key);
	return v && *v ? v : NULL;
}

static int resolve_credentials(const struct aws_config_flags *flags, aws_getenv_fn env, void *ctx,
			       const struct profile_src *p, struct aws_config *c, struct berth_error **err)
{
	const char *ak = env_get(env, ctx, "AWS_ACCESS_KEY_ID");
	const char *sk = env_get(env, ctx, "AWS_SECRET_ACCESS_KEY");
	if (!flags->profile && (ak || sk)) {
		if (!ak || !sk)
			return berth_error_msg(err, EINVAL, "partial credentials found in env, missing: %s",
					       ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		c->access_key = xstrdup(ak);
		c->secret_key = xstrdup(sk);
		const char *tok = env_get(env, ctx, "AWS_SESSION_TOKEN");
		c->session_token = tok ? xstrdup(tok) : NULL;
		c->credentials_source = "env";
		return 0;
	}
	static const struct {
		bool creds_file;
		const char *what;
	} sources[] = { { true, "shared credentials file" }, { false, "config file" } };
	for (size_t i = 0; i < ARRAY_SIZE(sources); i++) {
		const struct aws_ini *f = sources[i].creds_file ? p->creds : p->conf;
		const char *sec = sources[i].creds_file ? p->name : p->conf_section;
		ak = aws_ini_get(f, sec, "aws_access_key_id");
		sk = aws_ini_get(f, sec, "aws_secret_access_key");
		if (!ak && !sk)
			continue;
		if (!ak || !*ak || !sk || !*sk)
			return berth_error_msg(err, EINVAL,
					       "partial credentials found in %s profile '%s', missing: %s",
					       sources[i].what, p->name,
					       ak && *ak ? "aws_secret_access_key" : "aws_access_key_id");
		c->access_key = xstrdup(ak);
		c->secret_key = xstrdup(sk);
		const char *tok = aws_ini_get(f, sec, "aws_session_token");
		c->session_token = tok && *tok ? xstrdup(tok) : NULL;
		c->credentials_source = sources[i].what;
		return 0;
	}
	return berth_error_msg(err, ENOENT,
			       "unable to locate credentials: set AWS_ACCESS_KEY_ID and "
			       "AWS_SECRET_ACCESS_KEY, or profile '%s' in the shared credentials file",
			       p->name);
}

int aws_config_resolve(const struct aws_config_flags *flags, const char *service_env, aws_getenv_fn env,
		       void *env_ctx, struct aws_config *ret, struct berth_error **err)
{
	_cleanup_aws_ini_ struct aws_ini *creds = NULL, *conf = NULL;
	int r = load_file(env, env_ctx, "AWS_SHARED_CREDENTIALS_FILE", "credentials", &creds, err);
	if (r < 0 || (r = load_file(env, env_ctx, "AWS_CONFIG_FILE", "config", &conf, err)) < 0)
		return r;
	const char *explicit_profile =
	    first(flags->profile,
		  first(env_get(env, env_ctx, "AWS_PROFILE"), env_get(env, env_ctx, "AWS_DEFAULT_PROFILE")));
	const char *name = explicit_profile ? explicit_profile : "default";
	_cleanup_free_ char *conf_section =
	    streq(name, "default") ? xstrdup("default") : xasprintf("profile %s", name);
	if (explicit_profile && !aws_ini_has_section(creds, name) && !aws_ini_has_section(conf, conf_section))
		return berth_error_msg(err, ENOENT, "the config profile (%s) could not be found", name);
	struct profile_src p = { creds, conf, conf_section, name };
	struct aws_config c = { .profile = xstrdup(name) };
	r = resolve_credentials(flags, env, env_ctx, &p, &c, err);
	if (r < 0) {
		aws_config_done(&c);
		return r;
	}
	c.region = xstrdup(
	    first(flags->region, first(env_get(env, env_ctx, "AWS_REGION"),
				       first(env_get(env, env_ctx, "AWS_DEFAULT_REGION"),
					     first(profile_get(&p, "region", false), AWS_DEFAULT_REGION)))));
	_cleanup_free_ char *svc_var = service_env ? xasprintf("AWS_ENDPOINT_URL_%s", service_env) : NULL;
	c.endpoint =
	    xstrdup(first(flags->endpoint,
			  first(svc_var ? env_get(env, env_ctx, svc_var) : NULL,
				first(env_get(env, env_ctx, "AWS_ENDPOINT_URL"),
				      first(profile_get(&p, "endpoint_url", false), AWS_DEFAULT_ENDPOINT)))));
	const char *ca = first(flags->ca_bundle, first(env_get(env, env_ctx, "AWS_CA_BUNDLE"),
						       profile_get(&p, "ca_bundle", false)));
	c.ca_bundle = ca ? xstrdup(ca) : NULL;
	*ret = c;
	return 0;
}
