/*
 * params.c - name/value lists and their canonical fingerprint.
 */
#include "proxy/core/params.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "proxy/core/hash.h"

void params_init(struct params *p)
{
	memset(p, 0, sizeof(*p));
}

void params_init_exact(struct params *p)
{
	memset(p, 0, sizeof(*p));
	p->exact = true;
}

void params_free(struct params *p)
{
	for (size_t i = 0; i < p->count; i++) {
		free(p->names[i]);
		free(p->values[i]);
	}
	free(p->names);
	free(p->values);
	p->names = p->values = NULL;
	p->count = p->cap = 0;
}

static ssize_t params_find(const struct params *p, const char *name)
{
	for (size_t i = 0; i < p->count; i++)
		if ((p->exact ? strcmp(p->names[i], name) : strcasecmp(p->names[i], name)) == 0)
			return (ssize_t)i;
	return -1;
}

const char *params_get(const struct params *p, const char *name)
{
	ssize_t i = params_find(p, name);

	return i < 0 ? NULL : p->values[i];
}

bool params_set(struct params *p, const char *name, const char *value)
{
	ssize_t i = params_find(p, name);
	char *v = strdup(value);

	if (v == NULL)
		return false;
	if (i >= 0) {
		free(p->values[i]);
		p->values[i] = v;
		return true;
	}
	if (p->count == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		char **n = realloc(p->names, cap * sizeof(*n));

		if (n == NULL)
			goto fail;
		p->names = n;
		n = realloc(p->values, cap * sizeof(*n));
		if (n == NULL)
			goto fail;
		p->values = n;
		p->cap = cap;
	}
	p->names[p->count] = strdup(name);
	if (p->names[p->count] == NULL)
		goto fail;
	p->values[p->count++] = v;
	return true;
fail:
	free(v);
	return false;
}

bool params_copy(struct params *dst, const struct params *src)
{
	for (size_t i = 0; i < src->count; i++)
		if (!params_set(dst, src->names[i], src->values[i]))
			return false;
	return true;
}

static const struct params *sort_src;

static int cmp_index(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return strcmp(sort_src->names[x], sort_src->names[y]);
}

char *params_fingerprint(const struct params *p, size_t *len_out)
{
	size_t *order, len = 0, off = 0;
	char *out;

	order = malloc((p->count ? p->count : 1) * sizeof(*order));
	if (order == NULL)
		return NULL;
	for (size_t i = 0; i < p->count; i++) {
		order[i] = i;
		len += strlen(p->names[i]) + strlen(p->values[i]) + 2;
	}
	sort_src = p;
	qsort(order, p->count, sizeof(*order), cmp_index);
	out = malloc(len + 1);
	if (out == NULL) {
		free(order);
		return NULL;
	}
	for (size_t i = 0; i < p->count; i++) {
		size_t n = strlen(p->names[order[i]]), v = strlen(p->values[order[i]]);

		memcpy(out + off, p->names[order[i]], n);
		off += n;
		out[off++] = '=';
		memcpy(out + off, p->values[order[i]], v);
		off += v;
		out[off++] = '\0';
	}
	out[off] = '\0';
	free(order);
	*len_out = off;
	return out;
}

/* ---- interned snapshots ---- */

static struct htab snaps;

size_t params_snap_count(void)
{
	return snaps.count;
}

struct params_snap *params_snap_get(const struct params *p)
{
	size_t fp_len;
	char *fp = params_fingerprint(p, &fp_len);
	uint64_t h;
	struct params_snap *s;

	if (fp == NULL)
		return NULL;
	h = hash_bytes(fp, fp_len);
	for (struct hnode *n = htab_chain(&snaps, h); n; n = n->next) {
		s = htab_entry(n, struct params_snap, hnode);
		if (n->hash == h && s->fp_len == fp_len && memcmp(s->fingerprint, fp, fp_len) == 0) {
			free(fp);
			s->refs++;
			return s;
		}
	}
	if (!htab_reserve(&snaps, 64)) {
		free(fp);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		free(fp);
		return NULL;
	}
	params_init(&s->p);
	if (!params_copy(&s->p, p)) {
		params_free(&s->p);
		free(s);
		free(fp);
		return NULL;
	}
	s->refs = 1;
	s->fingerprint = fp;
	s->fp_len = fp_len;
	htab_insert(&snaps, &s->hnode, h);
	return s;
}

struct params_snap *params_snap_ref(struct params_snap *s)
{
	if (s)
		s->refs++;
	return s;
}

void params_snap_put(struct params_snap *s)
{
	if (s == NULL || --s->refs > 0)
		return;
	htab_remove(&snaps, &s->hnode);
	params_free(&s->p);
	free(s->fingerprint);
	free(s);
	if (snaps.count == 0)
		htab_free(&snaps); /* the last one: the table goes too (leak checkers stay quiet) */
}
