/*
 * test-server-records.c - the record cache (records.c: clusters and task
 * definitions RunTask reads, kept while the store tells no write to them)
 * and RunTask's task records written as strings (tasks.c), on a real SQLite
 * store with the server's write observer installed as the server does.
 */
#include "unit.h"

#include "common/json.h"
#include "server-store-fixture.h"

static void put(struct fixture *f, const char *key, const char *value)
{
	assert_int_equal(store_put(f->srv.store, key, value, strlen(value), 0, NULL, NULL), 0);
}

static const char *arn_of(json_t *j)
{
	return json_string_value(json_object_get(j, "clusterArn"));
}

/* A cached record is the same object until a write to it (or to another cached record) is told. */
static void test_cached_until_a_write_is_told(void **state)
{
	struct fixture *f = *state;
	put(f, "/berth/clusters/c1", "{\"clusterArn\":\"A1\"}");
	json_t *a = NULL, *b = NULL;
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/clusters/c1", &a, NULL), 0);
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/clusters/c1", &b, NULL), 0);
	assert_ptr_equal(a, b); /* the cache's */
	assert_string_equal(arn_of(b), "A1");
	json_decref(b);

	/* a write nobody told the cache about (another process's) is not seen: it is a cache */
	store_on_write(f->srv.store, NULL, NULL);
	put(f, "/berth/clusters/c1", "{\"clusterArn\":\"A2\"}");
	store_on_write(f->srv.store, server_note_write, &f->srv);
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/clusters/c1", &b, NULL), 0);
	assert_string_equal(arn_of(b), "A1");
	json_decref(b);

	/* a told write to a task definition drops every entry */
	put(f, "/berth/taskdefs/web/0000000001", "{\"family\":\"web\"}");
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/clusters/c1", &b, NULL), 0);
	assert_string_equal(arn_of(b), "A2");
	assert_ptr_not_equal(a, b);
	json_decref(b);
	assert_string_equal(arn_of(a), "A1"); /* the old reference still holds the old record */
	json_decref(a);

	put(f, "/berth/clusters/c1", "{\"clusterArn\":\"A3\"}");
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/clusters/c1", &b, NULL), 0);
	assert_string_equal(arn_of(b), "A3");
	json_decref(b);
	/* a deleted record is gone at once */
	assert_int_equal(store_remove(f->srv.store, "/berth/clusters/c1", NULL, NULL), 0);
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/clusters/c1", &b, NULL), -ENOENT);
}

/* Other keys are never cached; nor is anything without a cache (etcd). */
static void test_other_keys_and_no_cache_read_the_store(void **state)
{
	struct fixture *f = *state;
	put(f, "/berth/tasks/c1/t1", "{\"clusterArn\":\"T1\"}");
	json_t *a = NULL;
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/tasks/c1/t1", &a, NULL), 0);
	json_decref(a);
	store_on_write(f->srv.store, NULL, NULL);
	put(f, "/berth/tasks/c1/t1", "{\"clusterArn\":\"T2\"}");
	put(f, "/berth/clusters/c1", "{\"clusterArn\":\"C1\"}");
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/tasks/c1/t1", &a, NULL), 0);
	assert_string_equal(arn_of(a), "T2");
	json_decref(a);
	f->srv.records = server_record_cache_free(f->srv.records);
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/clusters/c1", &a, NULL), 0);
	put(f, "/berth/clusters/c1", "{\"clusterArn\":\"C2\"}");
	json_decref(a);
	assert_int_equal(server_record_get_shared(&f->srv, "/berth/clusters/c1", &a, NULL), 0);
	assert_string_equal(arn_of(a), "C2");
	json_decref(a);
}

static json_t *call(struct fixture *f, ecs_op_fn fn, json_t *in, size_t *n_tasks, char **body)
{
	struct ecs_call c = { .srv = &f->srv };
	json_t *out = NULL;
	int r = fn(&c, in, &out);
	if (r < 0)
		fail_msg("%s: %s", c.type, c.msg);
	json_decref(in);
	if (n_tasks)
		*n_tasks = c.n_tasks;
	if (body)
		*body = c.body;
	else
		free(c.body);
	return out;
}

static json_t *run_task(struct fixture *f, int count, size_t *n_tasks)
{
	char *body = NULL;
	json_t *out = call(f, server_ecs_run_task,
			   json_pack("{s:s,s:s,s:i,s:s,s:[{s:s}]}", "cluster", "c1", "taskDefinition",
				     "web:1", "count", count, "startedBy", "me\"\\", "tags", "key", "k"),
			   n_tasks, &body);
	assert_null(out);
	json_error_t je;
	json_t *v = json_loads(body, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		fail_msg("RunTask's answer is not JSON: %s: %s", je.text, body);
	free(body);
	return v;
}

/*
 * RunTask's records, written as strings: the answer and the store hold the
 * same records, with the shapes the rest of the server reads (ARNs, the
 * container's task ARN, a real createdAt, escaped strings); a new revision
 * of a task definition's record is used by the next RunTask at once.
 */
static void test_run_task_records(void **state)
{
	struct fixture *f = *state;
	json_decref(call(f, server_ecs_create_cluster, json_pack("{s:s}", "clusterName", "c1"), NULL, NULL));
	json_decref(
	    call(f, server_ecs_register_task_definition,
		 json_pack("{s:s,s:[{s:s,s:s,s:i,s:i,s:[{s:i,s:i}]},{s:s,s:s,s:i}],s:{s:i,s:[{s:s,s:s}]}}",
			   "family", "web", "containerDefinitions", "name", "app", "image", "busybox", "cpu",
			   128, "memory", 64, "portMappings", "containerPort", 80, "hostPort", 8080, "name",
			   "side", "image", "alpine", "memory", 32, "berthScheduling", "priority", 5,
			   "tolerations", "key", "k", "operator", "Exists"),
		 NULL, NULL));
	for (int i = 0; i < 6; i++) { /* (one task per node: a static host port) */
		_cleanup_free_ char *id = xasprintf("n%d", i);
		_cleanup_free_ char *key = xasprintf("/berth/instances/c1/%s", id);
		_cleanup_free_ char *v = xasprintf(
		    "{\"containerInstanceArn\":\"arn:aws:ecs:us-east-1:000000000000:container-instance/c1/"
		    "%s\","
		    "\"ec2InstanceId\":\"%s\",\"status\":\"ACTIVE\",\"clusterName\":\"c1\","
		    "\"registeredResources\":[{\"name\":\"CPU\",\"integerValue\":4096},"
		    "{\"name\":\"MEMORY\",\"integerValue\":8192}],"
		    "\"attributes\":[{\"name\":\"ecs.availability-zone\",\"value\":\"zone \\\"%d\\\"\"}],"
		    "\"registeredAt\":1}",
		    id, id, i);
		put(f, key, v);
		_cleanup_free_ char *alive = xasprintf("/berth/alive/%s", id);
		put(f, alive, "1");
	}
	size_t n = 0;
	json_t *out = run_task(f, 3, &n);
	json_t *tasks = json_object_get(out, "tasks");
	assert_int_equal(n, 3);
	assert_int_equal(json_array_size(tasks), 3);
	assert_int_equal(json_array_size(json_object_get(out, "failures")), 0);
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		const char *arn = json_string_value(json_object_get(t, "taskArn"));
		assert_true(startswith(arn, "arn:aws:ecs:us-east-1:000000000000:task/c1/"));
		_cleanup_free_ char *key = xasprintf("/berth/tasks/c1/%s", server_arn_tail(arn));
		json_t *stored = NULL;
		assert_int_equal(server_record_get(&f->srv, key, &stored, NULL, NULL), 0);
		assert_true(json_equal(stored, t));
		json_decref(stored);
		assert_true(json_is_real(json_object_get(t, "createdAt")));
		assert_string_equal(json_string_value(json_object_get(t, "startedBy")), "me\"\\");
		assert_string_equal(json_string_value(json_object_get(t, "clusterArn")),
				    "arn:aws:ecs:us-east-1:000000000000:cluster/c1");
		assert_string_equal(json_string_value(json_object_get(t, "lastStatus")), "PROVISIONING");
		assert_string_equal(json_string_value(json_object_get(t, "cpu")), "128");
		assert_int_equal(json_array_size(json_object_get(t, "tags")), 1);
		assert_true(startswith(json_string_value(json_object_get(t, "availabilityZone")), "zone \""));
		json_t *cs = json_object_get(t, "containers");
		assert_int_equal(json_array_size(cs), 2);
		json_t *c1 = json_array_get(cs, 1);
		assert_string_equal(json_string_value(json_object_get(c1, "taskArn")), arn);
		assert_string_equal(json_string_value(json_object_get(c1, "image")), "alpine");
		assert_string_equal(json_string_value(json_object_get(c1, "memory")), "32");
		assert_true(startswith(json_string_value(json_object_get(c1, "containerArn")),
				       "arn:aws:ecs:us-east-1:000000000000:container/c1/"));
		json_t *bp = json_object_get(t, "berthPlacement");
		assert_non_null(strstr(json_string_value(json_object_get(bp, "explanation")), "feasible"));
		assert_int_equal(json_integer_value(json_array_get(json_object_get(bp, "hostPorts"), 0)),
				 8080);
		assert_int_equal(json_integer_value(json_object_get(bp, "priority")), 5);
		assert_string_equal(json_string_value(json_object_get(
					json_array_get(json_object_get(bp, "tolerations"), 0), "operator")),
				    "Exists");
	}
	json_decref(out);

	/* the task definition's record changes (as a rewrite would): the next RunTask uses it */
	json_t *td = NULL;
	assert_int_equal(server_record_get(&f->srv, "/berth/taskdefs/web/0000000001", &td, NULL, NULL), 0);
	json_object_set_new(json_array_get(json_object_get(td, "containerDefinitions"), 1), "image",
			    json_string("debian"));
	assert_int_equal(server_record_put(&f->srv, "/berth/taskdefs/web/0000000001", td, NULL), 0);
	json_decref(td);
	out = run_task(f, 1, &n);
	assert_int_equal(n, 1);
	json_t *c1 = json_array_get(
	    json_object_get(json_array_get(json_object_get(out, "tasks"), 0), "containers"), 1);
	assert_string_equal(json_string_value(json_object_get(c1, "image")), "debian");
	json_decref(out);

	/* the service controller's interface: the records as JSON */
	_cleanup_json_ json_t *list = json_array(), *failures = json_array();
	assert_int_equal(server_record_get(&f->srv, "/berth/taskdefs/web/0000000001", &td, NULL, NULL), 0);
	_cleanup_json_ json_t *cl = json_pack("{s:s}", "clusterArn", "A");
	_cleanup_json_ json_t *ov = json_object();
	struct task_run_args a = { .td = td, .overrides = ov, .group = "service:s", .count = 2 };
	struct ecs_call c = { .srv = &f->srv };
	assert_int_equal(server_task_place(&c, "c1", cl, &a, list, failures), 0);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "group")),
			    "service:s");
	json_decref(td);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cached_until_a_write_is_told, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_keys_and_no_cache_read_the_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_task_records, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
