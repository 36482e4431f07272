/*
 * mount.c - RUN --mount option values (BuildKit's commands_runmount.go):
 * CSV fields of key=value, defaults per mount type.
 */
#include <ctype.h>
#include <inttypes.h>

#include "build/build-internal.h"
#include "common/strbuf.h"
#include "common/util.h"

static const char *const type_names[] = { "bind", "cache", "tmpfs", "secret", "ssh" };

const char *build_df_mount_type_name(enum df_mount_type t)
{
	return (size_t)t < ARRAY_SIZE(type_names) ? type_names[t] : "?";
}

/* Go's encoding/csv for one record: "a,b", quoted fields with "" escapes. */
static int csv_split(const char *s, char ***ret, struct berth_error **err)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t n = 0;
	for (;;) {
		struct strbuf f = STRBUF_INIT;
		if (*s == '"') {
			s++;
			for (;;) {
				if (!*s) {
					strbuf_release(&f);
					strv_free(v);
					return berth_error_msg(err, EINVAL,
							       "extraneous or missing \" in quoted-field");
				}
				if (*s == '"' && s[1] == '"') {
					strbuf_addch(&f, '"');
					s += 2;
				} else if (*s == '"') {
					s++;
					break;
				} else {
					strbuf_addch(&f, *s++);
				}
			}
			if (*s && *s != ',') {
				strbuf_release(&f);
				strv_free(v);
				return berth_error_msg(err, EINVAL,
						       "extraneous or missing \" in quoted-field");
			}
		} else {
			while (*s && *s != ',') {
				if (*s == '"') {
					strbuf_release(&f);
					strv_free(v);
					return berth_error_msg(err, EINVAL, "bare \" in non-quoted-field");
				}
				strbuf_addch(&f, *s++);
			}
		}
		v = xrealloc(v, (n + 2) * sizeof(char *));
		v[n++] = strbuf_detach(&f, NULL);
		v[n] = NULL;
		if (!*s)
			break;
		s++;
	}
	*ret = v;
	return 0;
}

static int parse_bool(const char *v, bool *ret)
{
	if (streq(v, "1") || strcasecmp(v, "true") == 0 || streq(v, "t")) {
		*ret = true;
		return 0;
	}
	if (streq(v, "0") || strcasecmp(v, "false") == 0 || streq(v, "f")) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

static int parse_uint(const char *v, int base, int64_t max, int64_t *ret)
{
	if (!*v)
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, base);
	if (errno || *end || !isdigit((unsigned char)*v) || x > (unsigned long long)max)
		return -EINVAL;
	*ret = (int64_t)x;
	return 0;
}

static void set_str(char **field, const char *v)
{
	free(*field);
	*field = xstrdup(v);
}

static int mount_key(struct df_mount *m, const char *key, const char *value, const char *field, bool *rw_set,
		     struct berth_error **err)
{
	bool b;
	if (streq(key, "type")) {
		for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
			if (streq(value, type_names[i])) {
				m->type = (enum df_mount_type)i;
				return 0;
			}
		return berth_error_msg(err, EINVAL, "unsupported mount type \"%s\"", value);
	}
	if (streq(key, "from"))
		set_str(&m->from, value);
	else if (streq(key, "source") || streq(key, "src"))
		set_str(&m->source, value);
	else if (streq(key, "target") || streq(key, "dst") || streq(key, "destination"))
		set_str(&m->target, value);
	else if (streq(key, "id"))
		set_str(&m->id, value);
	else if (streq(key, "env"))
		set_str(&m->env, value);
	else if (streq(key, "sharing")) {
		if (!streq(value, "shared") && !streq(value, "private") && !streq(value, "locked"))
			return berth_error_msg(err, EINVAL, "unsupported sharing value \"%s\"", value);
		set_str(&m->sharing, value);
	} else if (streq(key, "readonly") || streq(key, "ro") || streq(key, "readwrite") ||
		   streq(key, "rw")) {
		if (parse_bool(value, &b) < 0)
			return berth_error_msg(err, EINVAL, "invalid value for %s: %s", key, value);
		m->readonly = (key[0] == 'r' && (streq(key, "readonly") || streq(key, "ro"))) ? b : !b;
		*rw_set = true;
	} else if (streq(key, "required")) {
		if (parse_bool(value, &b) < 0)
			return berth_error_msg(err, EINVAL, "invalid value for %s: %s", key, value);
		m->required = b;
	} else if (streq(key, "mode")) {
		if (parse_uint(value, 8, 07777, &m->mode) < 0)
			return berth_error_msg(err, EINVAL, "invalid value %s for mode", value);
	} else if (streq(key, "uid") || streq(key, "gid")) {
		if (parse_uint(value, 10, UINT32_MAX, key[0] == 'u' ? &m->uid : &m->gid) < 0)
			return berth_error_msg(err, EINVAL, "invalid value %s for %s", value, key);
	} else if (streq(key, "size")) {
		if (util_parse_bytes(value, &m->size) < 0 || m->size < 0)
			return berth_error_msg(err, EINVAL, "invalid value %s for size", value);
	} else {
		return berth_error_msg(err, EINVAL, "unexpected key '%s' in '%s'", key, field);
	}
	return 0;
}

static int mount_defaults(struct df_mount *m, bool rw_set, struct berth_error **err)
{
	const char *t = build_df_mount_type_name(m->type);
	if (!rw_set)
		m->readonly = m->type == DF_MOUNT_BIND;
	if (m->from && m->type != DF_MOUNT_BIND && m->type != DF_MOUNT_CACHE)
		return berth_error_msg(err, EINVAL, "'from' is not supported for mount type \"%s\"", t);
	switch (m->type) {
	case DF_MOUNT_SECRET:
		if (!m->id && m->target) {
			const char *b = strrchr(m->target, '/');
			m->id = xstrdup(b ? b + 1 : m->target);
		}
		if (!m->id || !*m->id)
			return berth_error_msg(err, EINVAL, "secret mount requires 'id' or 'target'");
		if (!m->target && !m->env)
			m->target = xasprintf("/run/secrets/%s", m->id);
		return 0;
	case DF_MOUNT_SSH:
		if (!m->id)
			m->id = xstrdup("default");
		if (!m->target)
			m->target = xstrdup("/run/buildkit/ssh_agent.0");
		return 0;
	case DF_MOUNT_CACHE:
		if (!m->sharing)
			m->sharing = xstrdup("shared");
		/* fall through */
	default:
		if (!m->target || !*m->target)
			return berth_error_msg(err, EINVAL, "mount type \"%s\" requires a target", t);
		if (m->type == DF_MOUNT_CACHE && !m->id)
			m->id = xstrdup(m->target);
		return 0;
	}
}

int build_df_mount_parse(const char *spec, struct df_mount *m, struct berth_error **err)
{
	memset(m, 0, sizeof(*m));
	m->mode = m->uid = m->gid = m->size = -1;
	_cleanup_strv_ char **fields = NULL;
	int r = csv_split(spec, &fields, err);
	if (r < 0)
		return r;
	bool rw_set = false;
	for (char **f = fields; *f; f++) {
		const char *eq = strchr(*f, '=');
		_cleanup_free_ char *key = eq ? xstrndup(*f, (size_t)(eq - *f)) : xstrdup(*f);
		for (char *c = key; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (!eq) {
			if (streq(key, "readonly") || streq(key, "ro"))
				r = mount_key(m, key, "true", *f, &rw_set, err);
			else if (streq(key, "readwrite") || streq(key, "rw"))
				r = mount_key(m, key, "true", *f, &rw_set, err);
			else if (streq(key, "required"))
				r = mount_key(m, key, "true", *f, &rw_set, err);
			else
				r = berth_error_msg(err, EINVAL, "unexpected key '%s' in '%s'", key, *f);
		} else {
			r = mount_key(m, key, eq + 1, *f, &rw_set, err);
		}
		if (r < 0)
			return r;
	}
	return mount_defaults(m, rw_set, err);
}

void build_df_mount_done(struct df_mount *m)
{
	free(m->from);
	free(m->source);
	free(m->target);
	free(m->id);
	free(m->sharing);
	free(m->env);
	memset(m, 0, sizeof(*m));
}
