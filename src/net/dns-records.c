/*
 * dns-records.c - an extra record source for the embedded resolver: a text
 * file of "NAME IPV4 [IPV4...]" lines (blank lines and '#' comments allowed)
 * that another component writes atomically (the cluster agent's service
 * discovery) and the resolver re-reads when the file changes. The file is
 * input the resolver did not write, so the parser refuses malformed lines
 * with their number rather than guessing.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <strings.h>

#include "net/internal.h"

struct dns_records {
	struct dns_record_entry {
		char *name; /* lowercase, no trailing dot */
		uint32_t addrs[DNS_RECORDS_MAX_ADDRS];
		size_t n;
	} * v;
	size_t n;
};

struct dns_records *net_dns_records_free(struct dns_records *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
	free(r);
	return NULL;
}

static bool label_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* One line into e; -EINVAL naming what is wrong. */
static int parse_line(char *line, struct dns_record_entry *e, const char **why)
{
	char *save = NULL;
	char *name = strtok_r(line, " \t", &save);
	size_t len = strlen(name);
	while (len && name[len - 1] == '.')
		name[--len] = '\0';
	if (!len || len > DNS_NAME_MAX || name[0] == '.') {
		*why = "invalid name";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (!label_char(name[i]) || (name[i] == '.' && name[i + 1] == '.')) {
			*why = "invalid name";
			return -EINVAL;
		}
		name[i] = (char)tolower((unsigned char)name[i]);
	}
	*e = (struct dns_record_entry){ .name = name };
	for (char *a = strtok_r(NULL, " \t", &save); a; a = strtok_r(NULL, " \t", &save)) {
		struct in_addr ia;
		if (inet_pton(AF_INET, a, &ia) != 1) {
			*why = "invalid IPv4 address";
			return -EINVAL;
		}
		if (e->n == DNS_RECORDS_MAX_ADDRS) {
			*why = "too many addresses";
			return -EINVAL;
		}
		e->addrs[e->n++] = ntohl(ia.s_addr);
	}
	return 0;
}

int net_dns_records_parse(const char *text, size_t len, struct dns_records **ret, struct berth_error **err)
{
	if (len > DNS_RECORDS_MAX_BYTES)
		return berth_error_msg(err, EFBIG, "records: larger than %u bytes", DNS_RECORDS_MAX_BYTES);
	struct dns_records *r = xcalloc(1, sizeof(*r));
	_cleanup_free_ char *copy = xstrndup(text, len);
	if (strlen(copy) != len) {
		net_dns_records_free(r);
		return berth_error_msg(err, EINVAL, "records: NUL byte in the text");
	}
	size_t lineno = 0;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *p = line;
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		char *end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			*--end = '\0';
		if (!*p || *p == '#')
			continue;
		struct dns_record_entry e;
		const char *why = NULL;
		if (parse_line(p, &e, &why) < 0) {
			net_dns_records_free(r);
			return berth_error_msg(err, EINVAL, "records: line %zu: %s", lineno, why);
		}
		e.name = xstrdup(e.name);
		r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
		r->v[r->n++] = e;
	}
	*ret = r;
	return 0;
}

size_t net_dns_records_lookup(const struct dns_records *r, const char *name, uint32_t *out, size_t cap,
			      bool *ret_known)
{
	size_t n = 0;
	bool known = false;
	for (size_t i = 0; r && i < r->n; i++) {
		if (strcasecmp(r->v[i].name, name))
			continue;
		known = true;
		for (size_t k = 0; k < r->v[i].n && n < cap; k++) {
			bool dup = false;
			for (size_t j = 0; j < n; j++)
				dup |= out[j] == r->v[i].addrs[k];
			if (!dup)
				out[n++] = r->v[i].addrs[k];
		}
	}
	if (ret_known)
		*ret_known = known;
	return n;
}
