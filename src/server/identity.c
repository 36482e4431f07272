/*
 * identity.c - the cluster identity: account id, admin access key, join
 * secret and CA. The first server creates it in the store with a
 * put-if-absent transaction (so replicas starting together agree on one);
 * every server then writes the same files into its own root: pki/ca.pem,
 * credentials (0600), join-token (0600), plus its own server certificate
 * (pki/server.pem, pki/server-key.pem 0600) for the HTTPS listener.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "server/internal.h"
#include "pki/pki.h"

#define IDENTITY_KEY "/berth/identity"

static int create_identity(struct server *s, struct berth_error **err)
{
	_cleanup_free_ char *ca = NULL, *key = NULL;
	int r = pki_ca_create("berth cluster CA", &ca, &key, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *account = pki_random_string("0123456789", 12);
	if (account[0] == '0')
		account[0] = '1';
	_cleanup_free_ char *akid_tail = pki_random_string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16);
	_cleanup_free_ char *akid = xasprintf("AKIA%s", akid_tail);
	_cleanup_free_ char *secret =
	    pki_random_string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40);
	_cleanup_free_ char *join = pki_random_hex(16);
	json_t *j =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:f}", "account", account, "accessKey", akid, "secretKey",
		      secret, "joinSecret", join, "ca", ca, "caKey", key, "createdAt", server_record_now());
	bool ok = false;
	r = server_record_cas(s, IDENTITY_KEY, j, 0, &ok, err);
	json_decref(j);
	return r; /* !ok: another replica won the race; its identity is loaded next */
}

static int load_identity(struct server *s, struct berth_error **err)
{
	json_t *j = NULL;
	int r = server_record_get(s, IDENTITY_KEY, &j, NULL, err);
	if (r == -ENOENT) {
		r = create_identity(s, err);
		if (r < 0)
			return r;
		r = server_record_get(s, IDENTITY_KEY, &j, NULL, err);
	}
	if (r < 0)
		return berth_error_wrap(err, r, "load cluster identity");
	const char *account, *akid, *secret, *join, *ca, *key;
	if (json_unpack(j, "{s:s,s:s,s:s,s:s,s:s,s:s}", "account", &account, "accessKey", &akid, "secretKey",
			&secret, "joinSecret", &join, "ca", &ca, "caKey", &key) < 0) {
		json_decref(j);
		return berth_error_msg(err, EIO, "cluster identity in the store is malformed");
	}
	s->account = xstrdup(account);
	s->access_key = xstrdup(akid);
	s->secret = xstrdup(secret);
	s->join_secret = xstrdup(join);
	s->ca_pem = xstrdup(ca);
	s->ca_key_pem = xstrdup(key);
	json_decref(j);
	return 0;
}

static int write_file(const char *root, const char *name, const char *data, mode_t mode,
		      struct berth_error **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", root, name);
	int r = fs_write_file_atomic(path, data, strlen(data), mode, err);
	if (r < 0)
		return r;
	if (chmod(path, mode) < 0)
		return berth_error_errno(err, "chmod '%s'", path);
	return 0;
}

/* Keep this replica's server certificate unless it is missing or not from the cluster CA. */
static int ensure_server_cert(struct server *s, struct berth_error **err)
{
	_cleanup_free_ char *cert_path = xasprintf("%s/pki/server.pem", s->root);
	_cleanup_free_ char *key_path = xasprintf("%s/pki/server-key.pem", s->root);
	_cleanup_strbuf_ struct strbuf old = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, cert_path, 1 << 20, &old, NULL) >= 0 && access(key_path, R_OK) == 0 &&
	    pki_cert_verify(s->ca_pem, old.buf, NULL) == 0)
		return 0;
	_cleanup_free_ char *host = xstrdup(s->listen);
	char *colon = strrchr(host, ':');
	if (colon)
		*colon = '\0';
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	_cleanup_free_ char *cert = NULL, *key = NULL;
	int r = pki_server_cert(s->ca_pem, s->ca_key_pem, host, &cert, &key, err);
	if (r < 0)
		return r;
	r = write_file(s->root, "pki/server-key.pem", key, 0600, err);
	return r < 0 ? r : write_file(s->root, "pki/server.pem", cert, 0644, err);
}

int server_identity_init(struct server *s, struct berth_error **err)
{
	int r = load_identity(s, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *pki = xasprintf("%s/pki", s->root);
	if (mkdir(pki, 0755) < 0 && errno != EEXIST)
		return berth_error_errno(err, "create '%s'", pki);
	_cleanup_free_ char *creds = xasprintf(
	    "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", s->access_key, s->secret);
	_cleanup_free_ char *token = pki_join_token(s->ca_pem, s->join_secret);
	_cleanup_free_ char *token_line = xasprintf("%s\n", token);
	_cleanup_free_ char *account_line = xasprintf("%s\n", s->account);
	if ((r = write_file(s->root, "pki/ca.pem", s->ca_pem, 0644, err)) < 0 ||
	    (r = write_file(s->root, "credentials", creds, 0600, err)) < 0 ||
	    (r = write_file(s->root, "join-token", token_line, 0600, err)) < 0 ||
	    (r = write_file(s->root, "account-id", account_line, 0644, err)) < 0)
		return r;
	return ensure_server_cert(s, err);
}
