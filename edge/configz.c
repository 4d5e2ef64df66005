/*
 * configz.c - GET /configz on the admin port: the configuration in effect (reload.h).
 *
 * DESIGN. Rendered on an nng thread from one load of the live snapshot (which stays valid for a
 * grace period after a reload replaces it, far longer than this takes) and the reloader's
 * counters under its mutex. Keys keep the table's order. A secret's value is never written: a
 * set secret shows "***", an unset one "" (whether it is set is worth knowing; what it is is not).
 */
#include <inttypes.h>
#include <stdlib.h>

#include <jansson.h>

#include "reload_int.h"

static json_t *
value_json(const cm_cfg_entry *t)
{
	bool secret = edge_config_key_secret(t);

	switch (t->type) {
	case CM_CFG_STR: {
		const char *v = *(const char *const *)t->target;
		return json_string(secret && v[0] != '\0' ? "***" : v);
	}
	case CM_CFG_INT:
		return secret ? json_string("***") : json_integer(*(const int64_t *)t->target);
	case CM_CFG_BOOL:
		return secret ? json_string("***") : json_boolean(*(const bool *)t->target);
	}
	return json_null();
}

cm_err
edge_configz_render(void *arg, cm_buf *out)
{
	edge_reloader   *rl = arg;
	const edge_live *l;
	cm_cfg_entry     t[EDGE_CFG_MAX];
	size_t           n;
	json_t          *root = json_object(), *keys = json_object(), *reloads;
	char            *text = NULL;
	cm_err           err = CM_ENOMEM;

	/* The counters first, then the snapshot: a reload publishes its snapshot before it counts
	 * itself, so a count seen here comes with that reload's snapshot or a newer one. */
	pthread_mutex_lock(&rl->mu);
	reloads = json_pack("{s:I, s:I, s:s}", "applied", (json_int_t)rl->applied, "refused",
	                    (json_int_t)rl->refused, "last_error", rl->last_error);
	pthread_mutex_unlock(&rl->mu);
	l = edge_live_get(rl->e);
	n = edge_config_table((edge_config *)&l->cfg, t, EDGE_CFG_MAX);
	if (root == NULL || keys == NULL)
		goto out;
	for (size_t k = 0; k < n; k++) {
		json_t *o = json_pack("{s:o, s:s, s:b}", "value", value_json(&t[k]), "source",
		                      cm_cfg_origin_name(l->origin[k]), "live",
		                      edge_config_key_live(rl->e, t[k].env));
		if (o == NULL)
			goto out;
		if (l->pending[k])
			json_object_set_new(o, "pending_restart", json_true());
		if (json_object_set_new(keys, t[k].env, o) != 0)
			goto out;
	}
	if (json_object_set_new(root, "generation", json_integer((json_int_t)l->generation)) != 0)
		goto out;
	/* set_new takes its value even when it fails */
	if (json_object_set_new(root, "reloads", reloads) != 0) {
		reloads = NULL;
		goto out;
	}
	reloads = NULL;
	if (json_object_set_new(root, "keys", keys) != 0) {
		keys = NULL;
		goto out;
	}
	keys = NULL;
	if ((text = json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(1))) == NULL)
		goto out;
	err = cm_buf_appends(out, text);
out:
	free(text);
	json_decref(reloads);
	json_decref(keys);
	json_decref(root);
	return err;
}
