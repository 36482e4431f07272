/*
 * login.c - `berth login` / `berth logout`: the daemon checks the
 * credentials against the registry (POST /auth), then the CLI stores them in
 * docker's config.json "auths" (shared with docker), as docker's CLI does.
 */
#include <termios.h>

#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"
#include "image/image.h"

#define CRED_MAX   4096
#define HUB_SERVER "https://index.docker.io/v1/"

/* Read one line (without the newline) from stdin, with echo off when asked and on a terminal. */
static char *read_line(const char *prompt, bool secret)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO);
	if (prompt)
		fprintf(stderr, "%s", prompt);
	if (secret && tty && tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	} else {
		secret = false;
	}
	char *buf = xmalloc(CRED_MAX);
	if (!fgets(buf, CRED_MAX, stdin))
		buf[0] = '\0';
	if (secret) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fprintf(stderr, "\n");
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

/* "localhost:5000" from "https://localhost:5000/v2/"; the Hub for NULL. Caller frees. */
static char *server_host(const char *server)
{
	if (!server || !*server)
		return xstrdup("docker.io");
	const char *p = strstr(server, "://");
	p = p ? p + 3 : server;
	char *h = xstrndup(p, strcspn(p, "/"));
	if (streq(h, "index.docker.io") || streq(h, "registry-1.docker.io")) {
		free(h);
		return xstrdup("docker.io");
	}
	return h;
}

static int do_login(const char *server, const char *user, const char *pass)
{
	_cleanup_free_ char *host = server_host(server);
	bool hub = streq(host, "docker.io");
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_json_ json_t *body = json_pack("{s:s,s:s,s:s}", "username", user, "password", pass,
						"serveraddress", hub ? HUB_SERVER : host);
	json_t *resp = NULL;
	long st = cli_expect(&cli, "POST", body, &resp, 200, "/v1.41/auth");
	cli_close(&cli);
	json_decref(resp);
	if (st < 0)
		return 1;
	_cleanup_error_ struct berth_error *err = NULL;
	if (image_credentials_store(hub ? NULL : host, user, pass, &err) < 0) {
		berth_error_print(err, "berth login");
		return 1;
	}
	const char *dir = getenv("DOCKER_CONFIG");
	fprintf(stderr, "WARNING! Your password will be stored unencrypted in %s%s.\n",
		dir              ? dir
		: getenv("HOME") ? getenv("HOME")
				 : "/root",
		dir ? "/config.json" : "/.docker/config.json");
	printf("Login Succeeded\n");
	return 0;
}

int cli_login(int argc, char **argv)
{
	static const char *text =
	    "login [OPTIONS] [SERVER]\n\n"
	    "Log in to a registry.\nIf no server is specified, the Docker Hub is used.\n\n"
	    "Options:\n"
	    "  -p, --password string   Password\n"
	    "      --password-stdin    Take the password from stdin\n"
	    "  -u, --username string   Username\n";
	const char *user = NULL, *pass = NULL;
	bool pass_stdin = false;
	const struct cli_opt opts[] = {
		{ "username", 'u', CLI_OPT_STRING, &user },
		{ "password", 'p', CLI_OPT_STRING, &pass },
		{ "password-stdin", 0, CLI_OPT_FLAG, &pass_stdin },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(opts, argc, argv, "+", text, &rc))
		return rc;
	if (optind + 1 < argc) {
		fprintf(stderr, "\"berth login\" requires at most 1 argument.\n");
		return cli_usage(text, false);
	}
	if (pass && pass_stdin) {
		fprintf(stderr, "--password and --password-stdin are mutually exclusive\n");
		return 1;
	}
	if (pass_stdin && !user) {
		fprintf(stderr, "Must provide --username with --password-stdin\n");
		return 1;
	}
	if (pass)
		fprintf(stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
	_cleanup_free_ char *u = user ? xstrdup(user) : read_line("Username: ", false);
	_cleanup_free_ char *p = pass ? xstrdup(pass) : read_line(pass_stdin ? NULL : "Password: ", true);
	if (!*u || !*p) {
		fprintf(stderr, "Error: Cannot perform an interactive login from a non TTY device\n");
		return 1;
	}
	return do_login(optind < argc ? argv[optind] : NULL, u, p);
}

int cli_logout(int argc, char **argv)
{
	static const char *text =
	    "logout [SERVER]\n\n"
	    "Log out from a registry.\nIf no server is specified, the Docker Hub is used.\n";
	if (cli_is_help(argc, argv))
		return cli_usage(text, true);
	if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
		return cli_usage(text, false);
	_cleanup_free_ char *host = server_host(argc == 2 ? argv[1] : NULL);
	bool hub = streq(host, "docker.io");
	_cleanup_error_ struct berth_error *err = NULL;
	int r = image_credentials_erase(hub ? NULL : host, &err);
	if (r == -ENOENT) {
		printf("Not logged in to %s\n", hub ? HUB_SERVER : host);
		return 0;
	}
	if (r < 0) {
		berth_error_print(err, "berth logout");
		return 1;
	}
	printf("Removing login credentials for %s\n", hub ? HUB_SERVER : host);
	return 0;
}
