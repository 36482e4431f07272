/* fuzz-net-port.c - docker -p / --add-host / CIDR (IPv4, IPv6) / network name / MAC syntax must never crash.
 */
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
	if (net_extra_host_parse(s, &name, &ip, &e) == 0) {
		free(name);
		free(ip);
	}
	e = berth_error_free(e);
	struct ip4net net;
	net_ip4net_parse(s, "subnet", false, &net, NULL, &e);
	e = berth_error_free(e);
	struct ip6net net6;
	if (net_ip6net_parse(s, "subnet", &net6, &e) == 0)
		free(net_ip6net_format(&net6));
	e = berth_error_free(e);
	(void)net_network_name_valid(s);
	(void)net_mac_valid(s);
	return 0;
}
