/*
 * state.c - the container state machine's rules (see state.h); the engine's
 * operations ask it before acting, so the rules live in one place.
 */
#include "engine/state.h"

#include "common/util.h"

static const char *const state_names[] = { "created",  "running", "paused", "restarting",
					   "removing", "exited",  "dead" };

const char *engine_state_name(enum engine_state s)
{
	return (size_t)s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

enum engine_state engine_state_parse(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(state_names); i++)
		if (streq(state_names[i], name))
			return (enum engine_state)i;
	return ENGINE_EXITED;
}

bool engine_state_live(enum engine_state s)
{
	return s == ENGINE_RUNNING || s == ENGINE_PAUSED;
}

static int admit_start(enum engine_state s, struct berth_error **err)
{
	switch (s) {
	case ENGINE_RUNNING:
	case ENGINE_RESTARTING: return berth_error_msg(err, EALREADY, "container already started");
	case ENGINE_PAUSED:
		return berth_error_msg(err, EBUSY, "cannot start a paused container, try unpause instead");
	case ENGINE_REMOVING:
	case ENGINE_DEAD:
		return berth_error_msg(err, EBUSY, "container is marked for removal and cannot be started");
	default: return 0;
	}
}

int engine_state_admit(enum engine_op op, enum engine_state s, bool force, const char *id,
		       struct berth_error **err)
{
	switch (op) {
	case ENGINE_OP_START: return admit_start(s, err);
	case ENGINE_OP_PAUSE:
		if (!engine_state_live(s))
			return berth_error_msg(err, ENOTCONN, "Container %s is not running", id);
		if (s == ENGINE_PAUSED)
			return berth_error_msg(err, EALREADY, "Container %s is already paused", id);
		return 0;
	case ENGINE_OP_UNPAUSE:
		if (!engine_state_live(s))
			return berth_error_msg(err, ENOTCONN, "Container %s is not running", id);
		if (s != ENGINE_PAUSED)
			return berth_error_msg(err, ENOTCONN, "Container %s is not paused", id);
		return 0;
	case ENGINE_OP_KILL:
		if (!engine_state_live(s))
			return berth_error_msg(err, ENOTCONN, "Container %s is not running", id);
		return 0;
	case ENGINE_OP_EXEC:
		if (s == ENGINE_PAUSED)
			return berth_error_msg(
			    err, EBUSY, "Container %s is paused, unpause the container before exec", id);
		if (s != ENGINE_RUNNING)
			return berth_error_msg(err, EBUSY, "Container %s is not running", id);
		return 0;
	case ENGINE_OP_REMOVE:
		if ((engine_state_live(s) || s == ENGINE_RESTARTING) && !force)
			return berth_error_msg(err, EBUSY,
					       "You cannot remove a %s container %s. Stop the container "
					       "before attempting removal or force remove",
					       engine_state_name(s), id);
		return 0;
	}
	return berth_error_msg(err, EINVAL, "unknown container operation %d", (int)op);
}

bool engine_restart_wanted(const json_t *policy, int exit_code, int restart_count, bool manual_stop,
			   bool removed)
{
	const char *name = json_string_value(json_object_get(policy, "Name"));
	if (!name || manual_stop || removed)
		return false;
	if (streq(name, "always") || streq(name, "unless-stopped"))
		return true;
	if (streq(name, "on-failure")) {
		json_int_t max = json_integer_value(json_object_get(policy, "MaximumRetryCount"));
		return exit_code != 0 && (max <= 0 || restart_count < max);
	}
	return false;
}

int64_t engine_restart_backoff(int64_t prev_ms, int64_t ran_ms)
{
	if (ran_ms >= RESTART_RESET_AFTER_MS || prev_ms <= 0)
		return RESTART_BACKOFF_MIN_MS;
	return MIN(prev_ms * 2, RESTART_BACKOFF_MAX_MS);
}
