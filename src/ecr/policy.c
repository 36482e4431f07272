/*
 * policy.c - ECR lifecycle policies: parse and validate the JSON rule
 * language, and decide which images a policy expires (docs/ecr.md).
 */
#include <errno.h>
#include <inttypes.h>

#include "common/util.h"
#include "ecr/ecr.h"
#include "ecr/internal.h"

#define POLICY_MAX_RULES 100
#define TAG_LIST_MAX     100
#define SECONDS_PER_DAY  86400.0

struct ecr_policy *ecr_policy_free(struct ecr_policy *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_rules; i++) {
		strv_free(p->rules[i].prefixes);
		strv_free(p->rules[i].patterns);
	}
	free(p->rules);
	free(p);
	return NULL;
}

/* Only these keys in obj (NULL-terminated list). */
static const char *unknown_key(json_t *obj, const char *const *known)
{
	const char *k;
	json_t *v;
	json_object_foreach (obj, k, v) {
		bool ok = false;
		for (const char *const *p = known; *p && !ok; p++)
			ok = streq(*p, k);
		if (!ok)
			return k;
	}
	return NULL;
}

static int tag_list(json_t *sel, const char *key, int64_t prio, char ***ret, char **ret_msg)
{
	json_t *l = json_object_get(sel, key);
	*ret = NULL;
	if (!l)
		return 0;
	if (!json_is_array(l) || json_array_size(l) == 0 || json_array_size(l) > TAG_LIST_MAX)
		return ecr_fail(
		    ret_msg, "rule %" PRId64 ": selection.%s must be a non-empty list of at most %d strings",
		    prio, key, TAG_LIST_MAX);
	char **v = xcalloc(json_array_size(l) + 1, sizeof(char *));
	size_t i;
	json_t *e;
	json_array_foreach (l, i, e) {
		const char *s = json_string_value(e);
		if (!s || !*s || strlen(s) > 128) {
			strv_free(v);
			return ecr_fail(ret_msg,
					"rule %" PRId64
					": selection.%s[%zu] must be a tag prefix of 1 to 128 "
					"characters",
					prio, key, i);
		}
		v[i] = xstrdup(s);
	}
	*ret = v;
	return 0;
}

static int parse_rule(json_t *j, size_t idx, struct ecr_rule *r, char **ret_msg)
{
	static const char *const RULE_KEYS[] = { "rulePriority", "description", "selection", "action", NULL };
	static const char *const SEL_KEYS[] = { "tagStatus", "tagPrefixList", "tagPatternList",
						"countType", "countUnit",     "countNumber",
						NULL };
	static const char *const ACTION_KEYS[] = { "type", NULL };
	if (!json_is_object(j))
		return ecr_fail(ret_msg, "rules[%zu] must be an object", idx);
	const char *k = unknown_key(j, RULE_KEYS);
	if (k)
		return ecr_fail(ret_msg, "rules[%zu]: unknown field '%s'", idx, k);
	json_t *prio = json_object_get(j, "rulePriority");
	if (!json_is_integer(prio) || json_integer_value(prio) < 1 || json_integer_value(prio) > 999)
		return ecr_fail(ret_msg, "rules[%zu]: rulePriority must be an integer from 1 to 999", idx);
	r->priority = json_integer_value(prio);
	json_t *desc = json_object_get(j, "description");
	if (desc && !json_is_string(desc))
		return ecr_fail(ret_msg, "rule %" PRId64 ": description must be a string", r->priority);
	json_t *sel = json_object_get(j, "selection");
	if (!json_is_object(sel))
		return ecr_fail(ret_msg, "rule %" PRId64 ": selection is required (an object)", r->priority);
	if ((k = unknown_key(sel, SEL_KEYS)))
		return ecr_fail(ret_msg, "rule %" PRId64 ": unknown field 'selection.%s'", r->priority, k);
	const char *ts = json_string_value(json_object_get(sel, "tagStatus"));
	if (!ts)
		return ecr_fail(ret_msg, "rule %" PRId64 ": selection.tagStatus is required", r->priority);
	if (streq(ts, "tagged"))
		r->tag_status = ECR_TAGGED;
	else if (streq(ts, "untagged"))
		r->tag_status = ECR_UNTAGGED;
	else if (streq(ts, "any"))
		r->tag_status = ECR_ANY;
	else
		return ecr_fail(ret_msg,
				"rule %" PRId64 ": selection.tagStatus '%s' is not tagged, untagged or any",
				r->priority, ts);
	int rc;
	if ((rc = tag_list(sel, "tagPrefixList", r->priority, &r->prefixes, ret_msg)) < 0 ||
	    (rc = tag_list(sel, "tagPatternList", r->priority, &r->patterns, ret_msg)) < 0)
		return rc;
	if (r->tag_status == ECR_TAGGED && !r->prefixes && !r->patterns)
		return ecr_fail(ret_msg,
				"rule %" PRId64 ": tagStatus tagged needs selection.tagPrefixList or "
				"selection.tagPatternList",
				r->priority);
	if (r->prefixes && r->patterns)
		return ecr_fail(ret_msg,
				"rule %" PRId64 ": selection.tagPrefixList and selection.tagPatternList "
				"cannot be used together",
				r->priority);
	if (r->tag_status != ECR_TAGGED && (r->prefixes || r->patterns))
		return ecr_fail(ret_msg,
				"rule %" PRId64 ": selection.%s is only allowed with tagStatus tagged",
				r->priority, r->prefixes ? "tagPrefixList" : "tagPatternList");
	const char *ct = json_string_value(json_object_get(sel, "countType"));
	if (!ct)
		return ecr_fail(ret_msg, "rule %" PRId64 ": selection.countType is required", r->priority);
	json_t *unit = json_object_get(sel, "countUnit");
	if (streq(ct, "imageCountMoreThan")) {
		r->count_type = ECR_COUNT_MORE_THAN;
		if (unit)
			return ecr_fail(ret_msg,
					"rule %" PRId64 ": selection.countUnit is not allowed with "
					"imageCountMoreThan",
					r->priority);
	} else if (streq(ct, "sinceImagePushed")) {
		r->count_type = ECR_SINCE_PUSHED;
		if (!unit)
			return ecr_fail(ret_msg,
					"rule %" PRId64 ": selection.countUnit is required with "
					"sinceImagePushed",
					r->priority);
		if (!json_is_string(unit) || !streq(json_string_value(unit), "days"))
			return ecr_fail(ret_msg, "rule %" PRId64 ": selection.countUnit must be 'days'",
					r->priority);
	} else {
		return ecr_fail(ret_msg,
				"rule %" PRId64 ": selection.countType '%s' is not imageCountMoreThan or "
				"sinceImagePushed",
				r->priority, ct);
	}
	json_t *num = json_object_get(sel, "countNumber");
	if (!json_is_integer(num) || json_integer_value(num) < 1 || json_integer_value(num) > 100000)
		return ecr_fail(ret_msg, "rule %" PRId64 ": selection.countNumber must be a positive integer",
				r->priority);
	r->count = json_integer_value(num);
	json_t *action = json_object_get(j, "action");
	if (!json_is_object(action) || (k = unknown_key(action, ACTION_KEYS)) ||
	    !json_is_string(json_object_get(action, "type")) ||
	    !streq(json_string_value(json_object_get(action, "type")), "expire"))
		return ecr_fail(ret_msg, "rule %" PRId64 ": action must be {\"type\": \"expire\"}",
				r->priority);
	return 0;
}

static int cmp_rule(const void *a, const void *b)
{
	const struct ecr_rule *x = a, *y = b;
	return (x->priority > y->priority) - (x->priority < y->priority);
}

int ecr_policy_parse(const char *text, size_t len, struct ecr_policy **ret, char **ret_msg)
{
	*ret = NULL;
	*ret_msg = NULL;
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return ecr_fail(ret_msg, "not valid JSON: line %d, column %d: %s", jerr.line, jerr.column,
				jerr.text);
	struct ecr_policy *p = xcalloc(1, sizeof(*p));
	int rc = 0;
	json_t *rules = json_object_get(doc, "rules");
	static const char *const TOP_KEYS[] = { "rules", NULL };
	const char *k = json_is_object(doc) ? unknown_key(doc, TOP_KEYS) : NULL;
	if (!json_is_object(doc))
		rc = ecr_fail(ret_msg, "the policy must be a JSON object with \"rules\"");
	else if (k)
		rc = ecr_fail(ret_msg, "unknown field '%s'", k);
	else if (!json_is_array(rules) || json_array_size(rules) == 0 ||
		 json_array_size(rules) > POLICY_MAX_RULES)
		rc = ecr_fail(ret_msg, "\"rules\" must be a list of 1 to %d rules", POLICY_MAX_RULES);
	if (rc == 0) {
		p->rules = xcalloc(json_array_size(rules), sizeof(*p->rules));
		size_t i;
		json_t *j;
		json_array_foreach (rules, i, j) {
			rc = parse_rule(j, i, &p->rules[p->n_rules++], ret_msg);
			if (rc < 0)
				break;
		}
	}
	if (rc == 0) {
		qsort(p->rules, p->n_rules, sizeof(*p->rules), cmp_rule);
		for (size_t i = 0; i + 1 < p->n_rules && rc == 0; i++) {
			if (p->rules[i].priority == p->rules[i + 1].priority)
				rc = ecr_fail(ret_msg,
					      "rulePriority %" PRId64 " is used by more than one rule",
					      p->rules[i].priority);
			else if (p->rules[i].tag_status == ECR_ANY)
				rc = ecr_fail(ret_msg,
					      "rule %" PRId64
					      ": a rule with tagStatus any must have the highest "
					      "rulePriority",
					      p->rules[i].priority);
		}
	}
	json_decref(doc);
	if (rc < 0) {
		ecr_policy_free(p);
		return rc;
	}
	*ret = p;
	return 0;
}

/* '*' matches any run of characters; everything else is literal. */
static bool wildcard_match(const char *pat, const char *s)
{
	const char *star = NULL, *back = NULL;
	while (*s) {
		if (*pat == '*') {
			star = pat++;
			back = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star) {
			pat = star + 1;
			s = ++back;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return !*pat;
}

/* Every entry of the list matches at least one of the image's tags. */
static bool tags_match(char **list, bool prefix, const struct ecr_image *img)
{
	for (char **p = list; *p; p++) {
		bool hit = false;
		for (size_t i = 0; i < img->n_tags && !hit; i++)
			hit = prefix ? startswith(img->tags[i], *p) : wildcard_match(*p, img->tags[i]);
		if (!hit)
			return false;
	}
	return true;
}

static bool selects(const struct ecr_rule *r, const struct ecr_image *img)
{
	switch (r->tag_status) {
	case ECR_ANY: return true;
	case ECR_UNTAGGED: return img->n_tags == 0;
	case ECR_TAGGED:
		return img->n_tags > 0 &&
		       tags_match(r->prefixes ? r->prefixes : r->patterns, r->prefixes != NULL, img);
	}
	return false;
}

/* Newest first; ties by digest so the result does not depend on input order. */
static int cmp_newest(const void *a, const void *b, void *ud)
{
	const struct ecr_image *imgs = ud;
	const struct ecr_image *x = &imgs[*(const size_t *)a], *y = &imgs[*(const size_t *)b];
	if (x->pushed_at != y->pushed_at)
		return x->pushed_at < y->pushed_at ? 1 : -1;
	return strcmp(x->digest ? x->digest : "", y->digest ? y->digest : "");
}

void ecr_policy_evaluate(const struct ecr_policy *p, const struct ecr_image *images, size_t n, double now,
			 int64_t *ret_rule)
{
	bool *claimed = xcalloc(n ? n : 1, sizeof(bool));
	size_t *sel = xcalloc(n ? n : 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		ret_rule[i] = 0;
	for (size_t r = 0; p && r < p->n_rules; r++) {
		const struct ecr_rule *rule = &p->rules[r];
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (selects(rule, &images[i]))
				sel[m++] = i;
		qsort_r(sel, m, sizeof(size_t), cmp_newest, (void *)images);
		for (size_t k = 0; k < m; k++) {
			size_t i = sel[k];
			bool expire = rule->count_type == ECR_COUNT_MORE_THAN
					  ? k >= (size_t)rule->count
					  : images[i].pushed_at < now - (double)rule->count * SECONDS_PER_DAY;
			if (expire && !claimed[i] && !ret_rule[i])
				ret_rule[i] = rule->priority;
		}
		for (size_t k = 0; k < m; k++)
			claimed[sel[k]] = true;
	}
	free(claimed);
	free(sel);
}
