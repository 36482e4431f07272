/*
 * request.c - build_image(): parse, plan and execute one build request, the
 * single call the engine's POST /build handler and `berth build` need. Base
 * images are resolved through the backend; warnings are reported the way
 * docker's classic builder prints them.
 */
#include "build/build-internal.h"
#include "build/executor.h"
#include "common/strbuf.h"

struct resolve_ctx {
	const struct build_backend *be;
	bool pull;
};

static int resolve_via_backend(void *userdata, const char *ref, const char *platform, char **ret_id,
			       json_t **ret_config, struct berth_error **err)
{
	struct resolve_ctx *rc = userdata;
	if (!rc->be->ops->resolve_image)
		return berth_error_msg(err, ENOTSUP, "no image store to resolve '%s'", ref);
	return rc->be->ops->resolve_image(rc->be->data, ref, platform, rc->pull, ret_id, ret_config, err);
}

static void warn(const struct build_request *req, const char *fmt, ...) _printf_(2, 3);
static void warn(const struct build_request *req, const char *fmt, ...)
{
	if (!req->event)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s)
		req->event(req->event_userdata, BUILD_EVENT_STREAM, s);
}

static int load_dockerfile(const struct build_request *req, struct dockerfile **ret, struct berth_error **err)
{
	const char *name = req->dockerfile ? req->dockerfile : "Dockerfile";
	if (req->dockerfile_text)
		return build_dockerfile_parse(req->dockerfile_text, strlen(req->dockerfile_text), name, ret,
					      err);
	if (!req->ctx)
		return berth_error_msg(err, EINVAL, "no Dockerfile and no build context");
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = build_context_read(req->ctx, name, DF_MAX_SIZE + 1, &sb, err);
	if (r < 0)
		return berth_error_wrap(err, r, "read Dockerfile");
	return build_dockerfile_parse(sb.buf, sb.len, name, ret, err);
}

int build_image(const struct build_request *req, const struct build_backend *be, char **ret_image_id,
		struct berth_error **err)
{
	_cleanup_dockerfile_ struct dockerfile *df = NULL;
	int r = load_dockerfile(req, &df, err);
	if (r < 0) {
		if (req->event) {
			_cleanup_free_ char *m = berth_error_string(err ? *err : NULL);
			req->event(req->event_userdata, BUILD_EVENT_ERROR, m ? m : "parse error");
		}
		return r;
	}
	for (char **w = df->warnings; *w; w++)
		warn(req, "[WARNING]: %s\n", *w);
	struct resolve_ctx rc = { .be = be, .pull = req->pull };
	struct build_plan_opts po = { .build_args = req->build_args,
				      .target = req->target,
				      .platform = req->platform,
				      .labels = req->labels,
				      .resolve = resolve_via_backend,
				      .userdata = &rc };
	_cleanup_plan_ struct build_plan *plan = NULL;
	if ((r = build_plan_new(df, req->ctx, &po, &plan, err)) < 0) {
		if (req->event) {
			_cleanup_free_ char *m = berth_error_string(err ? *err : NULL);
			req->event(req->event_userdata, BUILD_EVENT_ERROR, m ? m : "plan error");
		}
		return r;
	}
	struct build_exec_opts eo = { .no_cache = req->no_cache,
				      .tags = req->tags,
				      .event = req->event,
				      .event_userdata = req->event_userdata,
				      .jobs = req->jobs,
				      .cancel = req->cancel };
	_cleanup_free_ char *id = NULL;
	if ((r = build_execute(plan, req->ctx, be, &eo, &id, err)) < 0)
		return r;
	if (plan->unused_args[0]) {
		struct strbuf sb = STRBUF_INIT;
		for (char **a = plan->unused_args; *a; a++)
			strbuf_addf(&sb, "%s%s", a == plan->unused_args ? "" : " ", *a);
		warn(req, "[Warning] One or more build-args [%s] were not consumed\n", sb.buf);
		strbuf_release(&sb);
	}
	*ret_image_id = TAKE_PTR(id);
	return 0;
}
