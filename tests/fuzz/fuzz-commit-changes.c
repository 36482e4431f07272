/* fuzz-commit-changes.c - docker commit's "changes" lines (API input) must never crash or leak. */
#include "common/json.h"
#include "engine/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	/* one change per line, as the API splits them */
	char *s = xstrndup((const char *)data, size);
	size_t n = 1;
	for (char *p = s; *p; p++)
		n += *p == '\n';
	const char **lines = xcalloc(n + 1, sizeof(char *));
	size_t i = 0;
	for (char *p = s, *nl; p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		lines[i++] = p;
	}
	json_t *cfg = json_pack("{s:[s], s:[s]}", "Env", "A=1", "Cmd", "x");
	struct berth_error *err = NULL;
	engine_config_apply_changes(cfg, lines, &err);
	berth_error_free(err);
	json_decref(cfg);
	free(lines);
	free(s);
	return 0;
}
