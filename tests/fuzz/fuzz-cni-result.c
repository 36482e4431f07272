/* fuzz-cni-result.c - CNI plugin output (results, conflists) must never crash the executor. */
#include "common/json.h"
#include "net/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	struct berth_error *e = NULL;
	json_t *res = NULL;
	if (net_cni_result_parse((const char *)data, size, CNI_VERSION, &res, &e) == 0) {
		uint32_t a;
		int p;
		char gw[IP4_STR_MAX], mac[18];
		net_cni_result_ipv4(res, &a, &p, gw, mac, NULL);
		char ip6[IP6_STR_MAX], gw6[IP6_STR_MAX];
		net_cni_result_ipv6(res, ip6, &p, gw6);
		json_decref(res);
	}
	free(berth_error_string(e));
	e = berth_error_free(e);
	json_t *j = NULL;
	if (json_parse((const char *)data, size, "conflist", &j, NULL) == 0) {
		net_cni_conflist_validate(j, &e);
		json_decref(j);
	}
	berth_error_free(e);
	return 0;
}
