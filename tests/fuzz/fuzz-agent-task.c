/* fuzz-agent-task.c - a task definition from the wire: translation and start order never crash. */
#include "agent/task.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	json_t *td = json_loadb((const char *)data, size, 0, NULL);
	if (!td)
		return 0;
	json_t *defs = json_object_get(td, "containerDefinitions");
	json_t *ids = json_pack("{s:s}", "first", "0123456789abcdef");
	json_t *vols = json_pack("{s:{s:s},s:{s:s}}", "data", "Bind", "/srv/data", "cache", "Volume", "v1");
	struct agent_task_ctx ctx = { .task_arn = "arn:aws:ecs:us-east-1:123456789012:task/c/0123",
				      .task_id = "0123456789abcdef0123456789abcdef",
				      .cluster = "c",
				      .cluster_arn = "arn:aws:ecs:us-east-1:123456789012:cluster/c",
				      .family = "f",
				      .revision = 1,
				      .network_mode = json_string_value(json_object_get(td, "networkMode")),
				      .pause_id = "feedface",
				      .volumes = vols,
				      .container_ids = ids };
	struct berth_error *e = NULL;
	json_t *order = NULL;
	if (agent_task_order(defs, &order, &e) == 0)
		json_decref(order);
	e = berth_error_free(e);
	size_t i;
	json_t *d;
	json_array_foreach (defs, i, d) {
		json_t *cfg = NULL, *hc = NULL;
		json_t *ov = json_array_get(
		    json_object_get(json_object_get(td, "overrides"), "containerOverrides"), i);
		if (agent_container_spec(&ctx, d, ov, &cfg, &hc, &e) == 0) {
			json_decref(cfg);
			json_decref(hc);
		}
		e = berth_error_free(e);
		if (i == 0)
			agent_container_essential(d);
	}
	json_decref(ids);
	json_decref(vols);
	json_decref(td);
	return 0;
}
