/* fuzz-json.c - the JSON helpers must never crash on any input. */
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *j = NULL;
	if (json_parse((const char *)data, size, "fuzz", &j, &err) < 0)
		return 0;
	const char *s;
	bool b;
	int64_t i;
	uint32_t u;
	double d;
	json_t *o;
	_cleanup_strv_ char **v = NULL, **m = NULL;
	struct berth_error *e = NULL;
	json_get_string(j, "", "a", 0, &s, &e);
	json_get_bool(j, "x", "b", JSON_REQUIRED, &b, &e);
	json_get_int64(j, "x", "c", 0, &i, &e);
	json_get_uint32(j, "x", "d", 0, &u, &e);
	json_get_double(j, "x", "e", 0, &d, &e);
	json_get_object(j, "x", "f", 0, &o, &e);
	json_get_strv(j, "x", "g", 0, &v, &e);
	json_get_string_map(j, "x", "h", 0, &m, &e);
	free(berth_error_string(e));
	berth_error_free(e);
	free(json_dump_compact(j));
	return 0;
}
