/*
 * swarm.c - the swarm-mode routes of the Docker Engine API, which berth does
 * not serve. dockerd without a swarm answers them with 503 and one of two
 * messages (moby daemon/cluster: errNoSwarm for leave, errNoManager for the
 * rest); clients' cleanup code (docker-py's swarm.leave(force=True), compose,
 * test suites) expects exactly that, not a 404 for an unknown route.
 */
#include "api/routes.h"

#define SWARM_NOT_MEMBER "This node is not part of a swarm"
#define SWARM_NOT_MANAGER                                                                          \
	"This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to " \
	"connect this node to swarm and try again."

void api_swarm_not_member(struct api_call *c)
{
	http_respond_error(c->req, 503, SWARM_NOT_MEMBER);
}

void api_swarm_not_manager(struct api_call *c)
{
	http_respond_error(c->req, 503, SWARM_NOT_MANAGER);
}

/* init and join would make a swarm in dockerd; berth has none to make */
void api_swarm_unsupported(struct api_call *c)
{
	http_respond_error(c->req, 503, "swarm mode is not supported by berth (see 'berth server')");
}
