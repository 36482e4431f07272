/*
 * networks.c - the Docker Engine API's /networks routes over net/ (shapes
 * from net_api_*), plus connect/disconnect of containers in any state: a
 * running container is (de)attached at once, and the container's record
 * (netops.h) says which networks it joins at its next start.
 */
#include "host/netops.h"
#include "api/filters.h"
#include "api/routes.h"
#include "common/json.h"

#define CALL_ERR(c, r, err) api_error((c)->req, (r), (err))

static struct net_ctx *net_of(struct api_call *c)
{
	return host_netops_net(c->api->netops);
}

/* Without networking (berth daemon --bridge none) every network route answers this. */
static bool disabled(struct api_call *c)
{
	if (c->api->netops)
		return false;
	http_respond_error(c->req, 400,
			   "container networking is disabled (daemon started with --bridge none)");
	return true;
}

/* ?filters= as JSON (NULL when absent); on failure a 400 has been sent. */
static int query_filters(struct api_call *c, json_t **ret)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r = api_filters_parse(http_request_query(c->req, "filters"), NULL, ret, &err);
	if (r < 0)
		CALL_ERR(c, -EINVAL, err);
	return r;
}

void api_networks_list(struct api_call *c)
{
	if (disabled(c))
		return;
	_cleanup_json_ json_t *filters = NULL;
	if (query_filters(c, &filters) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	struct net_network **list = NULL;
	int r = net_network_list(net_of(c), &list, &err);
	if (r < 0) {
		CALL_ERR(c, r, err);
		return;
	}
	json_t *out = json_array();
	for (size_t i = 0; list[i] && r >= 0; i++) {
		bool ok = true;
		if (filters && (r = net_api_network_match(net_of(c), list[i], filters, &ok, &err)) < 0)
			break;
		if (ok)
			json_array_append_new(out, net_api_network(net_of(c), list[i], false));
	}
	net_network_list_free(list);
	if (r < 0) {
		json_decref(out);
		CALL_ERR(c, -EINVAL, err);
		return;
	}
	http_respond_json(c->req, 200, out);
}

void api_network_inspect(struct api_call *c)
{
	if (!c->api->netops) { /* no network exists: `docker inspect NAME` goes on to say "No such object" */
		http_respond_error(c->req, 404, "network %s not found", c->param[0]);
		return;
	}
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	int r = net_network_get(net_of(c), c->param[0], &n, &err);
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_json(c->req, 200, net_api_network(net_of(c), n, true));
}

/* dockerd's network event: Actor the network's ID; its name and driver, the container's ID for
 * connect and disconnect. */
static void network_event(struct api_call *c, const char *action, const struct net_network *n,
			  const char *cid)
{
	_cleanup_json_ json_t *attrs =
	    json_pack("{s:s,s:s}", "name", n->name, "type", n->driver ? n->driver : "bridge");
	if (cid)
		json_object_set_new(attrs, "container", json_string(cid));
	engine_event_log(c->api->engine, "network", action, n->id, attrs);
}

void api_network_create(struct api_call *c)
{
	if (disabled(c))
		return;
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, true) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	struct net_create_opts o = { 0 };
	/* net_api_parse_create reads an unset pointer when Labels or Options are
	 * absent or null (net/api.c labels_from): give it empty objects */
	const char *const keys[] = { "Labels", "Options" };
	for (size_t i = 0; i < ARRAY_SIZE(keys) && json_is_object(body); i++) {
		json_t *v = json_object_get(body, keys[i]);
		if (!v || json_is_null(v))
			json_object_set_new(body, keys[i], json_object());
	}
	int r = net_api_parse_create(body, &o, &err);
	if (r < 0) {
		CALL_ERR(c, r == -EOPNOTSUPP ? -EINVAL : r, err);
		return;
	}
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	bool dup = o.name && net_network_get(net_of(c), o.name, &n, NULL) == 0;
	net_network_freep(&n);
	r = net_network_create(net_of(c), &o, &n, &err);
	net_api_create_opts_done(&o);
	if (r < 0) { /* a taken name is a conflict; overlapping or bad subnets are bad requests */
		CALL_ERR(c, r == -EEXIST && dup ? r : r == -EEXIST || r == -EOPNOTSUPP ? -EINVAL : r, err);
		return;
	}
	network_event(c, "create", n, NULL);
	http_respond_json(c->req, 201, net_api_create_response(n));
}

void api_network_remove(struct api_call *c)
{
	if (disabled(c))
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	(void)net_network_get(net_of(c), c->param[0], &n, NULL);
	int r = net_network_remove(net_of(c), c->param[0], &err);
	if (r < 0) {
		CALL_ERR(c, r, err);
		return;
	}
	if (n)
		network_event(c, "destroy", n, NULL);
	http_respond_empty(c->req, 204);
}

void api_networks_prune(struct api_call *c)
{
	if (disabled(c))
		return;
	_cleanup_json_ json_t *filters = NULL;
	if (query_filters(c, &filters) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	char **removed = NULL;
	/* the networks before: a destroy event names the ID and driver of each one pruned */
	struct net_network **before = NULL;
	if (net_network_list(net_of(c), &before, NULL) < 0)
		before = NULL;
	int r = net_network_prune_filtered(net_of(c), filters, &removed, &err);
	for (size_t i = 0; r >= 0 && removed && removed[i]; i++)
		for (size_t k = 0; before && before[k]; k++)
			if (streq(before[k]->name, removed[i]))
				network_event(c, "destroy", before[k], NULL);
	net_network_list_free(before);
	if (r < 0) {
		CALL_ERR(c, r, err);
		return;
	}
	http_respond_json(c->req, 200, net_api_prune_response(removed));
	strv_free(removed);
}

static bool is_live(const struct engine_container_info *i)
{
	return i->state == ENGINE_RUNNING || i->state == ENGINE_PAUSED || i->state == ENGINE_RESTARTING;
}

/* Index of network `name` in the record's list, or -1. */
static ssize_t record_find(const json_t *list, const char *name)
{
	size_t k;
	json_t *ep;
	json_array_foreach (list, k, ep)
		if (streq_ptr(json_string_value(json_object_get(ep, "Name")), name))
			return (ssize_t)k;
	return -1;
}

/* Shared part of connect/disconnect: the network, the container and its record. */
struct net_change {
	struct net_network *net;
	struct engine_container_info *ctr;
	json_t *rec;
};

static void net_change_done(struct net_change *x)
{
	net_network_free(x->net);
	engine_container_info_free(x->ctr);
	json_decref(x->rec);
}

static int net_change_open(struct api_call *c, const char *container, struct net_change *x,
			   struct berth_error **err)
{
	int r = net_network_get(net_of(c), c->param[0], &x->net, err);
	if (r < 0 || (r = engine_container_inspect(c->api->engine, container, &x->ctr, err)) < 0)
		return r;
	if (!host_netops_is_running_mode(x->ctr))
		return berth_error_msg(
		    err, EINVAL, "container '%s' uses network mode '%s': cannot change its networks",
		    x->ctr->name, json_string_value(json_object_get(x->ctr->hostconfig, "NetworkMode")));
	if (!x->net->subnet)
		return berth_error_msg(err, EINVAL, "container cannot be connected to network '%s'",
				       x->net->name);
	x->rec = host_netops_record_load(c->api->netops, x->ctr->id);
	if (json_is_true(json_object_get(x->rec, "Missing"))) {
		const char *mode = json_string_value(json_object_get(x->ctr->hostconfig, "NetworkMode"));
		const char *name = !mode || streq(mode, "default") ? NET_DEFAULT_NETWORK : mode;
		json_array_append_new(json_object_get(x->rec, "Networks"),
				      json_pack("{s:s,s:n}", "Name", name, "Aliases"));
	}
	return 0;
}

void api_network_connect(struct api_call *c)
{
	if (disabled(c))
		return;
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, true) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	const char *container = NULL;
	struct net_endpoint_opts ep = { 0 };
	struct net_change x = { 0 };
	int r = net_api_parse_connect(body, &container, &ep, &err);
	if (r >= 0)
		r = net_change_open(c, container, &x, &err);
	json_t *list = json_object_get(x.rec, "Networks");
	if (r >= 0 && record_find(list, x.net->name) >= 0)
		r = berth_error_msg(&err, EEXIST, "endpoint with name '%s' already exists in network '%s'",
				    x.ctr->name, x.net->name);
	if (r >= 0 && ep.ipv4 && streq(x.net->name, NET_DEFAULT_NETWORK))
		r = berth_error_msg(&err, EINVAL,
				    "user specified IP address is supported on user defined networks only");
	if (r >= 0 && is_live(x.ctr)) {
		ep.network = x.net->name;
		r = net_container_connect(net_of(c), x.ctr->id, &ep, &err);
	}
	if (r >= 0) {
		json_array_append_new(list, host_netops_endpoint_entry(
						x.net->name, json_object_get(body, "EndpointConfig"), NULL));
		r = host_netops_record_save(c->api->netops, x.ctr->id, x.rec, &err);
	}
	if (r >= 0)
		network_event(c, "connect", x.net, x.ctr->id);
	net_api_endpoint_opts_done(&ep);
	net_change_done(&x);
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 200);
}

void api_network_disconnect(struct api_call *c)
{
	if (disabled(c))
		return;
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, true) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	const char *container = NULL;
	struct net_change x = { 0 };
	int r = json_get_string(body, NULL, "Container", JSON_REQUIRED, &container, &err);
	if (r >= 0)
		r = net_change_open(c, container, &x, &err);
	json_t *list = json_object_get(x.rec, "Networks");
	ssize_t at = r >= 0 ? record_find(list, x.net->name) : -1;
	if (r >= 0 && at < 0)
		r = berth_error_msg(&err, ENOTCONN, "container '%s' is not connected to network '%s'",
				    x.ctr->name, x.net->name);
	if (r >= 0 && is_live(x.ctr)) {
		r = net_container_disconnect(net_of(c), x.ctr->id, x.net->name, &err);
		if (r == -ENOENT)
			r = 0; /* recorded but not attached (e.g. attached while it was stopped) */
	} else if (r >= 0) {
		r = net_container_release(net_of(c), x.ctr->id, x.net->id, &err); /* its kept address */
	}
	if (r >= 0) {
		json_array_remove(list, (size_t)at);
		r = host_netops_record_save(c->api->netops, x.ctr->id, x.rec, &err);
	}
	if (r >= 0)
		network_event(c, "disconnect", x.net, x.ctr->id);
	net_change_done(&x);
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 200);
}
