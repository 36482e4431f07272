/*
 * fuzz-sched-query.c - the ECS cluster query language parser must never crash,
 * leak or loop: parse, and when it parses, evaluate against a small snapshot
 * (attributes, tasks, a disconnected node) so the evaluator is fuzzed too.
 */
#include "sched/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sched_snapshot *fixture(void)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_attr a1[] = { { "ecs.availability-zone", "us-east-1a" },
				   { "ecs.instance-type", "t2.micro" },
				   { "gpus", "4" },
				   { "flag", NULL } };
	struct sched_node_spec n1 = { .id = "n1",
				      .cpu = 1024,
				      .memory = 1024,
				      .agent_connected = true,
				      .agent_version = "1.20.0",
				      .registered_at = 1529360908,
				      .attrs = a1,
				      .n_attrs = ARRAY_SIZE(a1) };
	struct sched_node_spec n2 = { .id = "n2", .ec2_instance_id = "i-0abc", .cpu = 1024, .memory = 1024 };
	sched_node_put(s, &n1, NULL);
	sched_node_put(s, &n2, NULL);
	struct sched_task_spec t = { .id = "t1", .node_id = "n1", .group = "service:web" };
	sched_task_add(s, &t, NULL);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sched_snapshot *s;
	static unsigned runs;
	if (size > SCHED_MAX_EXPRESSION + 16)
		return 0;
	if (++runs % 4096 == 0) /* interned symbols grow with every new input: start afresh now and then */
		s = sched_snapshot_free(s);
	if (!s)
		s = fixture();
	_cleanup_free_ char *text = xstrndup((const char *)data, size);
	struct sched_query *q = NULL;
	struct berth_error *e = NULL;
	if (sched_query_parse(&s->in, text, &q, &e) == 0) {
		for (uint32_t i = 0; i < s->n_slots; i++)
			(void)sched_query_eval(s, q, &s->nodes[i]);
		sched_query_free(q);
	}
	berth_error_free(e);
	return 0;
}
