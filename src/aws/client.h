/*
 * client.h - an AWS JSON-protocol client (awsJson1_1: POST / with
 * X-Amz-Target: <prefix>.<Operation>, Content-Type application/x-amz-json-1.1,
 * SigV4-signed), configured like the aws CLI (aws/config.h), over the
 * project's libcurl wrapper (http/http.h). The ECS CLI verbs use it; ECR,
 * logs and autoscaling clients are other (service, prefix) pairs.
 *
 * API errors come back as -EREMOTEIO with the error chain's message
 * "<Type>: <message>" (the server's __type without any "namespace#" part),
 * which is what `berth: ClusterNotFoundException: Cluster not found.` prints.
 */
#ifndef BERTH_AWS_CLIENT_H
#define BERTH_AWS_CLIENT_H

#include <jansson.h>

#include "aws/config.h"
#include "common/error.h"

/* Largest response body we accept (ECS answers are far smaller). */
#define AWS_MAX_RESPONSE (16u << 20)
/* Most pages aws_client_paginate() follows before giving up (a server looping on nextToken). */
#define AWS_MAX_PAGES    10000

/* ECS: the signing name and the X-Amz-Target prefix. */
#define AWS_ECS_SERVICE        "ecs"
#define AWS_ECS_TARGET_PREFIX  "AmazonEC2ContainerServiceV20141113"
/* CloudWatch Logs. */
#define AWS_LOGS_SERVICE       "logs"
#define AWS_LOGS_TARGET_PREFIX "Logs_20140328"

struct aws_client;

/*
 * A client for one service at cfg's endpoint ("https://host[:port][/]" or
 * "http://host[:port]"; https verifies the server against cfg->ca_bundle or
 * the system's CAs). cfg is copied. -EINVAL for an endpoint URL we cannot use.
 */
int aws_client_new(const struct aws_config *cfg, const char *service, const char *target_prefix,
		   struct aws_client **ret, struct berth_error **err);
struct aws_client *aws_client_free(struct aws_client *c);
static inline void aws_client_freep(struct aws_client **c)
{
	*c = aws_client_free(*c);
}
#define _cleanup_aws_client_ _cleanup_(aws_client_freep)

/*
 * Call operation op with input in (borrowed; NULL: {}). On success *ret is
 * the response object. An error response: -EREMOTEIO with "<Type>: <message>";
 * a transport failure: that error; a 2xx body that is not a JSON object: -EPROTO.
 */
int aws_client_call(struct aws_client *c, const char *op, const json_t *in, json_t **ret,
		    struct berth_error **err);

/*
 * Call op repeatedly, following "nextToken", and return the concatenation of
 * every page's array result_key (a new array). in is borrowed; its own
 * nextToken, if any, is where the walk starts.
 */
int aws_client_paginate(struct aws_client *c, const char *op, const json_t *in, const char *result_key,
			json_t **ret, struct berth_error **err);

/*
 * Parse an error response: the JSON body's "__type" (or "code"; else the
 * x-amzn-ErrorType header value, headers may be NULL) with any "prefix#" and
 * ":suffix" removed, and "message" (or "Message"). Without a usable type:
 * "HTTP <status>". Without a message: the body's first line when the body is
 * not JSON, else "". Both are new strings, always set.
 */
void aws_parse_error(long status, const char *body, size_t len, const char *headers, char **ret_type,
		     char **ret_message);

#endif
