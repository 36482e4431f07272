/* fuzz-registry-config.c - the registry's YAML config must never crash or leak:
 * the first line also goes through the listen-address and ACL-action parsers. */
#include "registry/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	struct registry_config c;
	struct berth_error *err = NULL;
	registry_config_init(&c);
	if (registry_config_parse(&c, (const char *)data, size, &err) == 0) {
		/* the server dereferences these unconditionally */
		if (!c.root || !c.host || !c.token_issuer || !c.token_service)
			__builtin_trap();
		(void)registry_config_rule(&c, "library/busybox");
	}
	free(berth_error_string(err));
	berth_error_free(err);
	registry_config_done(&c);

	const char *nl = memchr(data, '\n', size);
	_cleanup_free_ char *line =
	    xstrndup((const char *)data, nl ? (size_t)(nl - (const char *)data) : size);
	char *host = NULL;
	uint16_t port;
	if (registry_parse_addr(line, &host, &port) == 0)
		free(host);
	unsigned actions;
	(void)registry_parse_actions(line, &actions);
	return 0;
}
