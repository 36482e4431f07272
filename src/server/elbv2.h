/*
 * elbv2.h - the part of Elastic Load Balancing v2's API berth serves on the
 * cluster endpoint (docs/lb.md): DescribeTargetGroups and
 * DescribeTargetHealth, so `aws elbv2 describe-target-health
 * --target-group-arn ARN` and boto3's elbv2 client read the target groups
 * `berth lb create` makes, with the health the nodes' HAProxy report.
 *
 * ELB speaks AWS's query protocol: POST / with an
 * application/x-www-form-urlencoded body (Action=...&Version=2015-12-01&...,
 * lists as Name.member.N), SigV4 for service "elasticloadbalancing", XML
 * answers in the 2015-12-01 namespace and <ErrorResponse> errors.
 *
 * The pure parts (form decoding, XML writing) are in server-core
 * (elbv2-query.c, tests/unit/test-server-elbv2.c, fuzz-elbv2-form).
 */
#ifndef BERTH_SERVER_ELBV2_H
#define BERTH_SERVER_ELBV2_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/strbuf.h"

#define ELBV2_XMLNS      "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
#define ELBV2_VERSION    "2015-12-01"
#define ELBV2_MAX_PARAMS 1000

/*
 * Decode a form body (k=v&k2=v2, '+' and %XX) into {key: value}. NULL when
 * malformed: a bad %-escape, a NUL, an empty or repeated key, more than
 * ELBV2_MAX_PARAMS pairs.
 */
json_t *server_elbv2_form_parse(const char *body, size_t len);

/* The values of NAME.member.1, NAME.member.2, ... in order, stopping at the first gap (new array). */
json_t *server_elbv2_form_list(const json_t *form, const char *name);

/* Append s with XML's five special characters escaped. */
void server_elbv2_xml_text(struct strbuf *out, const char *s);
/* Append <tag>text</tag> (escaped); nothing when text is NULL. */
void server_elbv2_xml_elem(struct strbuf *out, const char *tag, const char *text);

/* The <ErrorResponse> document of an error (code as botocore's model names it). */
char *server_elbv2_error_xml(const char *code, const char *message, const char *request_id);

#endif
