/* fuzz-elbv2-form.c - ELBv2 query bodies (hostile: any client may send one before the signature is
 * checked... after it, here too) never crash the form decoder; what it accepts has only valid keys. */
#include "server/elbv2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	json_t *f = server_elbv2_form_parse((const char *)data, size);
	if (!f)
		return 0;
	const char *k;
	json_t *v;
	json_object_foreach (f, k, v)
		if (!*k || !json_is_string(v))
			__builtin_trap();
	json_t *l = server_elbv2_form_list(f, "Names");
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	json_array_foreach (l, i, v)
		server_elbv2_xml_elem(&sb, "member", json_string_value(v));
	strbuf_release(&sb);
	json_decref(l);
	json_decref(f);
	return 0;
}
