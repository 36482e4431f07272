/* fuzz-dockerignore.c - .dockerignore parsing and matching must never crash:
 * the first line of the input is a path, the rest the .dockerignore text. */
#include "build/ignore.h"
#include "build/pathmatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 14)
		return 0;
	const char *s = (const char *)data;
	const char *nl = memchr(s, '\n', size);
	size_t pl = nl ? (size_t)(nl - s) : size;
	char *path = xstrndup(s, pl);
	struct ignore *ig = NULL;
	struct berth_error *err = NULL;
	const char *rest = nl ? nl + 1 : s + size;
	if (build_ignore_parse(rest, (size_t)(s + size - rest), &ig, &err) == 0) {
		build_ignore_matches(ig, path);
		build_ignore_matches(ig, "a/b/c");
		build_ignore_free(ig);
	}
	char **pats = build_ignore_read_patterns(rest, (size_t)(s + size - rest));
	for (char **p = pats; *p; p++) {
		build_go_path_match(*p, path);
		free(build_go_path_clean(*p));
	}
	strv_free(pats);
	free(berth_error_string(err));
	berth_error_free(err);
	free(path);
	return 0;
}
