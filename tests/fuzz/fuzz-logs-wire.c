/*
 * fuzz-logs-wire.c - the agents' binary log batch parser (what the server
 * reads from a node) and the json-file line reader must never crash or
 * leak; a line the reader takes must read the same through jansson
 * (when jansson takes it: it also refuses invalid UTF-8).
 */
#include <jansson.h>
#include <string.h>

#include "common/macro.h"
#include "logs/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1 << 20))
		return 0;
	struct logs_wire_batch b;
	if (!logs_wire_parse((const char *)data, size, 100, &b)) {
		for (size_t i = 0; i < b.n; i++)
			if (b.ev[i].len == 0 || b.ev[i].message + b.ev[i].len > (const char *)data + size)
				__builtin_trap();
		logs_wire_batch_done(&b);
	}
	_cleanup_strbuf_ struct strbuf msg = STRBUF_INIT;
	int64_t ts;
	if (logs_jsonfile_line((const char *)data, size, &msg, &ts) == 1) {
		json_t *j = json_loadb((const char *)data, size, 0, NULL);
		json_t *log = json_object_get(j, "log");
		/* jansson also checks UTF-8 (the reader passes bytes through): compare what both read */
		if (j && (!json_is_string(log) || json_string_length(log) != msg.len ||
			  memcmp(json_string_value(log), msg.buf, msg.len) != 0))
			__builtin_trap();
		json_decref(j);
	}
	return 0;
}
