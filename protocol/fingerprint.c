/*
 * fingerprint.c - statements with their constants removed (see
 * fingerprint.h): two passes over the tokens (sqltok.h), the first for the
 * highest parameter number, the second to hash and write the text.
 */
#include "protocol/fingerprint.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "protocol/sqltok.h"

/* Parameter numbers above this are not looked at (PostgreSQL allows 65535). */
#define FP_PARAM_MAX 65535u

/* The text being written and the hash being computed. */
struct fp_out {
	struct fingerprint *fp;
	size_t used;     /* bytes of fp->text written */
	bool full;       /* the text was cut */
	bool have_prev;  /* a token was written (spacing) */
	bool prev_glue;  /* the previous token wants no blank after it: ( [ . :: */
	bool prev_ident; /* the previous token was a word or identifier */
	size_t prev_end; /* where it ended in the input */
	char prev_last;  /* its last character written */
};

static void fp_hash(struct fp_out *o, const void *p, size_t n, bool fold)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		o->fp->hash ^= fold && b[i] >= 'A' && b[i] <= 'Z' ? b[i] + ('a' - 'A') : b[i];
		o->fp->hash *= 0x100000001b3ULL;
	}
	o->fp->hash ^= 0x1f; /* token separator */
	o->fp->hash *= 0x100000001b3ULL;
}

static void fp_text(struct fp_out *o, const char *p, size_t n, bool fold)
{
	size_t room = FINGERPRINT_TEXT_MAX - 4; /* "..." and the NUL */

	if (o->full)
		return;
	if (o->used + n > room) {
		memcpy(o->fp->text + o->used, "...", 4);
		o->used += 3;
		o->full = true;
		o->fp->cut = true;
		return;
	}
	for (size_t i = 0; i < n; i++)
		o->fp->text[o->used + i] =
			(char)(fold && p[i] >= 'A' && p[i] <= 'Z' ? p[i] + ('a' - 'A') : p[i]);
	o->used += n;
	o->fp->text[o->used] = '\0';
}

/* Punctuation written without a blank before it. */
static bool fp_glue_before(const struct sqltok *t)
{
	return t->kind == SQLTOK_PUNCT && (strcmp(t->word, ",") == 0 || strcmp(t->word, ")") == 0 ||
					   strcmp(t->word, "]") == 0 || strcmp(t->word, ";") == 0 ||
					   strcmp(t->word, ".") == 0 ||
					   strcmp(t->word, "::") == 0 || strcmp(t->word, "[") == 0);
}

/* Punctuation written without a blank after it. */
static bool fp_glue_after(const struct sqltok *t)
{
	return t->kind == SQLTOK_PUNCT && (strcmp(t->word, "(") == 0 || strcmp(t->word, "[") == 0 ||
					   strcmp(t->word, ".") == 0 || strcmp(t->word, "::") == 0);
}

/* Write one normalised token (text p[0..n)) with the blank before it. */
static void fp_emit(struct fp_out *o, const struct sqltok *t, const char *p, size_t n, bool fold)
{
	bool call = sqltok_punct(t, '(') && o->prev_ident && o->prev_end == t->start;

	fp_hash(o, p, n, fold);
	/* no blank where the two would read as one token (": ::" is not ":::") */
	bool merge = o->prev_last == ':' && n > 0 && p[0] == ':';

	if (o->have_prev && ((!o->prev_glue && !fp_glue_before(t) && !call) || merge))
		fp_text(o, " ", 1, false);
	fp_text(o, p, n, fold);
	o->have_prev = true;
	o->prev_glue = fp_glue_after(t);
	o->prev_ident = t->kind == SQLTOK_WORD || t->kind == SQLTOK_IDENT;
	o->prev_end = t->start + t->len;
	o->prev_last = n > 0 ? p[n - 1] : '\0';
}

/* The highest $n of the text (0 when none). */
static unsigned fp_max_param(const uint8_t *sql, size_t len)
{
	struct sqltok t;
	size_t off = 0;
	unsigned max = 0;

	while (sqltok_next(sql, len, &off, &t) != SQLTOK_END) {
		unsigned v = 0;

		if (t.kind != SQLTOK_PARAM)
			continue;
		for (const char *d = t.word; *d && v <= FP_PARAM_MAX; d++)
			v = v * 10 + (unsigned)(*d - '0');
		if (t.word[0] == '\0' || v > FP_PARAM_MAX)
			v = FP_PARAM_MAX;
		if (v > max)
			max = v;
	}
	return max;
}

void fingerprint_sql(const uint8_t *sql, size_t len, struct fingerprint *fp)
{
	struct fp_out o;
	struct sqltok t;
	size_t off = 0;
	unsigned next = fp_max_param(sql, len) + 1;
	unsigned semis = 0; /* semicolons held back: written only if more follows */
	struct sqltok semi;

	memset(fp, 0, sizeof(*fp));
	memset(&o, 0, sizeof(o));
	memset(&semi, 0, sizeof(semi));
	o.fp = fp;
	fp->hash = 0xcbf29ce484222325ULL;
	while (sqltok_next(sql, len, &off, &t) != SQLTOK_END) {
		char num[16];

		if (sqltok_punct(&t, ';')) {
			semis++;
			semi = t;
			continue;
		}
		for (; semis > 0; semis--)
			fp_emit(&o, &semi, ";", 1, false);
		switch (t.kind) {
		case SQLTOK_STRING:
		case SQLTOK_NUMBER:
			snprintf(num, sizeof(num), "$%u", next < FP_PARAM_MAX ? next : FP_PARAM_MAX);
			if (next < FP_PARAM_MAX)
				next++;
			fp->constants++;
			fp_emit(&o, &t, num, strlen(num), false);
			break;
		case SQLTOK_WORD:
			fp_emit(&o, &t, (const char *)sql + t.start, t.len, true);
			break;
		default:
			fp_emit(&o, &t, (const char *)sql + t.start, t.len, false);
			break;
		}
	}
}
