/*
 * flags.c - --chmod values (octal and chmod(1)'s symbolic clauses) and the
 * --secret / --ssh specs of `berth build`. Symbolic modes are checked once
 * (build_chmod_check) and applied per file by re-walking the text, which is
 * short: no parsed form to own.
 */
#include <stdlib.h>
#include <string.h>

#include "build/flags.h"
#include "common/macro.h"
#include "common/util.h"

static bool is_octal(const char *s)
{
	if (!*s || strlen(s) > 5)
		return false;
	for (const char *c = s; *c; c++)
		if (*c < '0' || *c > '7')
			return false;
	return strtol(s, NULL, 8) <= 07777;
}

static mode_t who_mask(char c)
{
	switch (c) {
	case 'u': return 04700;
	case 'g': return 02070;
	case 'o': return 01007;
	default: return 07777; /* 'a' */
	}
}

/* Bits of one permission letter (or the class copied with u/g/o), spread over all classes. */
static mode_t perm_bits(char c, mode_t cur, bool is_dir)
{
	switch (c) {
	case 'r': return 0444;
	case 'w': return 0222;
	case 'x': return 0111;
	case 'X': return is_dir || (cur & 0111) ? 0111 : 0;
	case 's': return 06000;
	case 't': return 01000;
	case 'u': return ((cur >> 6) & 7) * 0111;
	case 'g': return ((cur >> 3) & 7) * 0111;
	case 'o': return (cur & 7) * 0111;
	default: return 0;
	}
}

/*
 * Walk the clauses; with ret_mode NULL only validate. One clause:
 * [ugoa]* then one or more actions [-+=] followed by [rwxXst]* or one of [ugo].
 */
static bool symbolic(const char *spec, mode_t *mode, bool is_dir)
{
	const char *p = spec;
	for (;;) {
		mode_t who = 0;
		for (; *p && strchr("ugoa", *p); p++)
			who |= who_mask(*p);
		if (!who)
			who = 07777;
		if (!*p || !strchr("+-=", *p))
			return false;
		while (*p && strchr("+-=", *p)) {
			char op = *p++;
			mode_t cur = mode ? *mode : 0, bits = 0;
			if (*p && strchr("ugo", *p))
				bits = perm_bits(*p++, cur, is_dir);
			else
				for (; *p && strchr("rwxXst", *p); p++)
					bits |= perm_bits(*p, cur, is_dir);
			if (!mode)
				continue;
			bits &= who;
			if (op == '+')
				*mode |= bits;
			else if (op == '-')
				*mode &= ~bits;
			else
				*mode = (*mode & ~who) | bits;
		}
		if (!*p)
			return true;
		if (*p++ != ',' || !*p)
			return false;
	}
}

int build_chmod_check(const char *spec, struct berth_error **err)
{
	if (spec && strlen(spec) <= BUILD_CHMOD_MAX &&
	    (is_octal(spec) || (*spec && symbolic(spec, NULL, false))))
		return 0;
	return berth_error_msg(err, EINVAL,
			       "invalid chmod parameter '%s': expected an octal mode or a symbolic mode "
			       "like 'u+x,g-w'",
			       spec ? spec : "");
}

mode_t build_chmod_apply(const char *spec, mode_t old, bool is_dir)
{
	if (is_octal(spec))
		return (mode_t)strtol(spec, NULL, 8);
	mode_t m = old & 07777;
	(void)symbolic(spec, &m, is_dir);
	return m & 07777;
}

void build_secret_spec_done(struct build_secret_spec *s)
{
	free(s->id);
	free(s->src);
	free(s->env);
	*s = (struct build_secret_spec){ 0 };
}

static int secret_field(struct build_secret_spec *s, const char *f, bool *is_env, struct berth_error **err)
{
	const char *eq = strchr(f, '=');
	if (!eq || eq == f || !eq[1])
		return berth_error_msg(err, EINVAL, "invalid secret field '%s': expected key=value", f);
	size_t kl = (size_t)(eq - f);
	const char *v = eq + 1;
	char **slot = NULL;
	if (kl == 2 && strncmp(f, "id", 2) == 0)
		slot = &s->id;
	else if ((kl == 3 && strncmp(f, "src", 3) == 0) || (kl == 6 && strncmp(f, "source", 6) == 0))
		slot = &s->src;
	else if (kl == 3 && strncmp(f, "env", 3) == 0)
		slot = &s->env;
	else if (kl == 4 && strncmp(f, "type", 4) == 0) {
		if (!streq(v, "file") && !streq(v, "env"))
			return berth_error_msg(err, EINVAL, "unsupported secret type '%s'", v);
		*is_env = streq(v, "env");
		return 0;
	} else
		return berth_error_msg(err, EINVAL, "unexpected key '%.*s' in secret '%s'", (int)kl, f, f);
	free(*slot);
	*slot = xstrdup(v);
	return 0;
}

int build_secret_spec_parse(const char *spec, struct build_secret_spec *ret, struct berth_error **err)
{
	struct build_secret_spec s = { 0 };
	_cleanup_free_ char *copy = xstrdup(spec ? spec : "");
	bool is_env = false;
	int r = 0;
	for (char *f = copy, *next; r >= 0 && f; f = next) {
		next = strchr(f, ',');
		if (next)
			*next++ = '\0';
		r = secret_field(&s, f, &is_env, err);
	}
	if (r >= 0 && (!s.id || !*s.id))
		r = berth_error_msg(err, EINVAL, "invalid secret '%s': 'id' is required", spec ? spec : "");
	if (r >= 0 && s.src && s.env)
		r = berth_error_msg(err, EINVAL,
				    "invalid secret '%s': both a file and an environment variable", spec);
	if (r >= 0 && is_env && !s.env) {
		s.env = s.src ? s.src : xstrdup(s.id); /* type=env,src=VAR */
		s.src = NULL;
	}
	if (r < 0) {
		build_secret_spec_done(&s);
		return r;
	}
	*ret = s;
	return 0;
}

int build_ssh_spec_parse(const char *spec, const char *auth_sock_env, char **ret_id, char **ret_sock,
			 struct berth_error **err)
{
	const char *eq = spec ? strchr(spec, '=') : NULL;
	_cleanup_free_ char *id = eq ? xstrndup(spec, (size_t)(eq - spec)) : xstrdup(spec ? spec : "");
	const char *sock = eq ? eq + 1 : auth_sock_env;
	if (!*id || strchr(id, ','))
		return berth_error_msg(err, EINVAL, "invalid ssh spec '%s': expected ID[=SOCKET]",
				       spec ? spec : "");
	if (!sock || !*sock)
		return berth_error_msg(
		    err, EINVAL, "invalid ssh spec '%s': no agent socket given and SSH_AUTH_SOCK is not set",
		    spec);
	if (strchr(sock, ','))
		return berth_error_msg(err, EINVAL, "invalid ssh spec '%s': only one agent socket per id",
				       spec);
	*ret_id = TAKE_PTR(id);
	*ret_sock = xstrdup(sock);
	return 0;
}
