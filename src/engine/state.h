/*
 * state.h - the container state machine's rules, apart from the locking and
 * the side effects that carry them out (ops.c, lifecycle.c, exec.c, monitor.c):
 * which operation a state admits (with dockerd's error and its errno, which
 * the API maps to the status code), where an exit leads (the restart policy),
 * and the restart back-off. Pure functions: unit-tested in
 * tests/unit/test-engine-state.c.
 *
 *   created --start--> running --pause--> paused --unpause--> running
 *   running --exit--> restarting (policy wants it) --backoff--> running
 *                 \-> exited --start--> running
 *   any --remove--> removing --> (gone) or dead (the removal failed)
 */
#ifndef BERTH_ENGINE_STATE_H
#define BERTH_ENGINE_STATE_H

#include <jansson.h>

#include "common/error.h"
#include "engine/engine.h"

#define RESTART_BACKOFF_MIN_MS 100
#define RESTART_BACKOFF_MAX_MS 60000
/* a run at least this long resets the back-off (dockerd: 10 s) */
#define RESTART_RESET_AFTER_MS 10000

enum engine_op {
	ENGINE_OP_START,
	ENGINE_OP_PAUSE,
	ENGINE_OP_UNPAUSE,
	ENGINE_OP_KILL,
	ENGINE_OP_EXEC,
	ENGINE_OP_REMOVE,
};

/*
 * 0 when a container (id) in state s admits op; else the error dockerd gives:
 * -EALREADY (start of a started one, pause of a paused one), -EBUSY (409: paused,
 * marked for removal, running without force), -ENOTCONN (not running).
 * force: a forced remove.
 */
int engine_state_admit(enum engine_op op, enum engine_state s, bool force, const char *id,
		       struct berth_error **err);

/* Running or paused: a process is there to signal. */
bool engine_state_live(enum engine_state s);

/* The state named by engine_state_name(); an unknown or NULL name reads as exited. */
enum engine_state engine_state_parse(const char *name);

/*
 * Whether an exit with exit_code restarts the container under HostConfig.RestartPolicy
 * (policy may be NULL): never after a manual stop or a removal; "always" and
 * "unless-stopped" always; "on-failure" on a non-zero code while restart_count is below
 * MaximumRetryCount (<= 0: no limit).
 */
bool engine_restart_wanted(const json_t *policy, int exit_code, int restart_count, bool manual_stop,
			   bool removed);

/*
 * The delay before the next restart: RESTART_BACKOFF_MIN_MS at first or after a run of
 * RESTART_RESET_AFTER_MS or more, else the previous delay doubled up to RESTART_BACKOFF_MAX_MS.
 */
int64_t engine_restart_backoff(int64_t prev_ms, int64_t ran_ms);

#endif
