/* fuzz-sigv4.c - the SigV4 Authorization header parser and canonicaliser never crash on any input. */
#include "aws/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *any_header(void *ctx, const char *name)
{
	return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > SIGV4_MAX_HEADER + 16)
		return 0;
	char *s = xstrndup((const char *)data, size);
	struct sigv4_auth a;
	if (aws_sigv4_parse_authorization(s, &a, NULL) == 0) {
		if (!a.access_key || !a.scope || !a.signature || strlen(a.signature) != 64 ||
		    !a.signed_headers)
			__builtin_trap();
		char *c = NULL;
		if (aws_sigv4_canonical_request("POST", s, s, &a, any_header, s, "00", &c, NULL) == 0) {
			char *sts = aws_sigv4_string_to_sign("20150830T123600Z", a.scope, c);
			char sig[65];
			aws_sigv4_sign("k", a.date, a.region, a.service, sts, sig);
			free(sts);
		}
		free(c);
		aws_sigv4_auth_done(&a);
	}
	time_t t;
	aws_sigv4_parse_amz_date(s, &t);
	free(s);
	return 0;
}
