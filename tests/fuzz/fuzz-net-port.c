/* fuzz-net-port.c - docker -p / --add-host / CIDR syntax must never crash. */
#include "net/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	_cleanup_free_ char *s = xstrndup((const char *)data, size);
	struct net_port *v = NULL;
	size_t n = 0;
	struct berth_error *e = NULL;
	net_port_parse(s, &v, &n, &e);
	e = berth_error_free(e);
	free(v);
	char *name = NULL, *ip = NULL;
	if (extra_host_parse(s, &name, &ip, &e) == 0) {
		free(name);
		free(ip);
	}
	e = berth_error_free(e);
	struct ip4net net;
	ip4net_parse(s, "subnet", false, &net, NULL, &e);
	berth_error_free(e);
	return 0;
}
