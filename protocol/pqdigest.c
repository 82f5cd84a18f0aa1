/*
 * pqdigest.c - answers boiled down to their comparable parts (see
 * pqdigest.h): a byte-at-a-time reader of backend messages whose state
 * survives any split of the stream, so that a row is hashed the same
 * whether it arrived in one piece or in a thousand.
 */
#include "protocol/pqdigest.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

/* Parts of a RowDescription and an ErrorResponse, and of the rest. */
enum {
	PART_COUNT = 0, /* the 2-byte count (RowDescription, ParameterDescription) */
	PART_NAME,      /* a column's name, up to its NUL */
	PART_FIXED,     /* a column's 18 fixed bytes; a parameter's 4-byte OID */
	PART_CODE,      /* ErrorResponse: a field's code byte */
	PART_VALUE,     /* ErrorResponse: a field's value, up to its NUL */
	PART_DONE,      /* nothing more is read from this message */
};

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser: every input bit reaches every output bit */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t fnv_byte(uint64_t h, uint8_t b)
{
	return (h ^ b) * FNV_PRIME;
}

void pqdigest_init(struct pqdigest *d, uint32_t max_len)
{
	memset(d, 0, sizeof(*d));
	d->max_len = max_len < 4 ? 4 : max_len;
	d->first_error = true;
	d->first_cols = true;
}

void pqdigest_take(struct pqdigest *d, struct pqdigest_result *out)
{
	*out = d->cur;
	memset(&d->cur, 0, sizeof(d->cur));
	d->first_error = true;
	d->first_cols = true;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Append a byte to a bounded text of the result. */
static void text_put(struct pqdigest *d, char *text, size_t size, char ch)
{
	if (d->text_len + 1 < size) {
		text[d->text_len++] = ch;
		text[d->text_len] = '\0';
	}
}

static void text_puts(struct pqdigest *d, char *text, size_t size, const char *s)
{
	for (; *s; s++)
		text_put(d, text, size, *s);
}

/* A type OID as compared: PostgreSQL's own as is, the database's own as one value. */
static uint32_t norm_oid(uint32_t oid)
{
	return oid >= PQDIGEST_FIRST_USER_OID ? PQDIGEST_FIRST_USER_OID : oid;
}

/* A message's body begins. */
static void body_begin(struct pqdigest *d)
{
	d->part = PART_DONE;
	d->pos = 0;
	d->h = FNV_OFFSET;
	d->text_len = 0;
	d->zstatus = 0;
	switch (d->type) {
	case 'D':
		d->part = PART_NAME; /* the row: every byte is hashed */
		break;
	case 'T':
	case 't':
		d->part = PART_COUNT;
		if (d->type == 'T' && d->first_cols)
			d->cur.cols[0] = '\0';
		break;
	case 'E':
		d->part = d->first_error ? PART_CODE : PART_DONE;
		break;
	case 'C':
		d->part = PART_VALUE;
		d->cur.tag[0] = '\0';
		break;
	case 's':
		d->cur.suspended++;
		break;
	default:
		break;
	}
}

/* The body of the current message is over: finish what was being read. */
static void body_end(struct pqdigest *d)
{
	switch (d->type) {
	case 'D': {
		uint64_t m = mix64(d->h);

		d->cur.rows++;
		d->cur.set_hash += m;
		d->cur.seq_hash = mix64(d->cur.seq_hash ^ m) + d->cur.rows;
		break;
	}
	case 'T':
	case 't':
		if (d->part != PART_DONE)
			d->cur.malformed = true; /* fewer columns than it counted */
		if (d->type == 'T')
			d->first_cols = false;
		break;
	case 'E':
		if (d->first_error) {
			d->first_error = false;
			if (d->cur.sqlstate[0] == '\0')
				memcpy(d->cur.sqlstate, "XX000", 6);
		}
		break;
	default:
		break;
	}
}

/* One byte of a RowDescription or ParameterDescription body. */
static void describe_byte(struct pqdigest *d, uint8_t b)
{
	bool row = d->type == 'T';

	switch (d->part) {
	case PART_COUNT:
		d->fixed[d->pos++] = b;
		if (d->pos < 2)
			return;
		d->field = (uint32_t)d->fixed[0] << 8 | d->fixed[1];
		if (row && d->first_cols)
			d->cur.ncols = d->field;
		d->cur.cols_hash = mix64(d->cur.cols_hash ^ (row ? 0x54u : 0x74u) ^ d->field);
		d->pos = 0;
		d->h = FNV_OFFSET;
		d->part = d->field == 0 ? PART_DONE : row ? PART_NAME : PART_FIXED;
		return;
	case PART_NAME:
		if (b != '\0') {
			d->h = fnv_byte(d->h, b);
			if (d->first_cols)
				text_put(d, d->cur.cols, sizeof(d->cur.cols), (char)b);
			return;
		}
		d->cur.cols_hash = mix64(d->cur.cols_hash ^ d->h);
		d->part = PART_FIXED;
		d->pos = 0;
		return;
	case PART_FIXED: {
		uint32_t need = row ? 18 : 4;

		d->fixed[d->pos++] = b;
		if (d->pos < need)
			return;
		{
			uint32_t oid = be32(d->fixed + (row ? 6 : 0));
			char num[16];

			d->cur.cols_hash = mix64(d->cur.cols_hash ^ ((uint64_t)norm_oid(oid) << 1));
			if (row && d->first_cols) {
				snprintf(num, sizeof(num), " %" PRIu32 "%s", oid,
					 d->field > 1 ? ", " : "");
				text_puts(d, d->cur.cols, sizeof(d->cur.cols), num);
			}
		}
		d->pos = 0;
		d->h = FNV_OFFSET;
		d->field--;
		d->part = d->field == 0 ? PART_DONE : row ? PART_NAME : PART_FIXED;
		return;
	}
	default:
		return;
	}
}

/* One byte of an ErrorResponse body (only the request's first error is read). */
static void error_byte(struct pqdigest *d, uint8_t b)
{
	switch (d->part) {
	case PART_CODE:
		if (b == '\0') {
			d->part = PART_DONE;
			return;
		}
		d->field = b;
		d->part = PART_VALUE;
		d->pos = 0;
		d->text_len = 0;
		return;
	case PART_VALUE:
		if (b == '\0') {
			d->part = PART_CODE;
			return;
		}
		if (d->field == 'C' && d->pos < 5)
			d->cur.sqlstate[d->pos] = (char)b;
		else if (d->field == 'M')
			text_put(d, d->cur.error, sizeof(d->cur.error), (char)b);
		d->pos++;
		return;
	default:
		return;
	}
}

/* Bytes of the current message's body. */
static void body_bytes(struct pqdigest *d, const uint8_t *p, size_t n)
{
	switch (d->type) {
	case 'D':
		for (size_t i = 0; i < n; i++)
			d->h = fnv_byte(d->h, p[i]);
		return;
	case 'T':
	case 't':
		for (size_t i = 0; i < n; i++) {
			if (d->part == PART_DONE) {
				d->cur.malformed = n > 0; /* bytes beyond the columns it counted */
				return;
			}
			describe_byte(d, p[i]);
		}
		return;
	case 'E':
		for (size_t i = 0; i < n && d->part != PART_DONE; i++)
			error_byte(d, p[i]);
		return;
	case 'C':
		for (size_t i = 0; i < n && d->part != PART_DONE; i++) {
			if (p[i] == '\0')
				d->part = PART_DONE;
			else
				text_put(d, d->cur.tag, sizeof(d->cur.tag), (char)p[i]);
		}
		return;
	default:
		return;
	}
}

size_t pqdigest_feed(struct pqdigest *d, const uint8_t *p, size_t n, bool *ready, char *status)
{
	size_t i = 0;

	*ready = false;
	while (i < n && !d->failed) {
		if (d->hdr_have < 5) {
			d->hdr[d->hdr_have++] = p[i++];
			if (d->hdr_have < 5)
				continue;
			{
				uint32_t len = be32(d->hdr + 1);

				if (len < 4 || len > d->max_len) {
					d->failed = true;
					return i;
				}
				d->type = d->hdr[0];
				d->left = len - 4;
				body_begin(d);
			}
		} else {
			size_t k = n - i < d->left ? n - i : d->left;

			/* ReadyForQuery: its first body byte is the transaction status */
			if (d->type == 'Z' && k > 0 && d->pos == 0) {
				d->zstatus = (char)p[i];
				d->pos = 1;
			}
			body_bytes(d, p + i, k);
			i += k;
			d->left -= (uint32_t)k;
		}
		if (d->hdr_have == 5 && d->left == 0) {
			body_end(d);
			d->hdr_have = 0;
			if (d->type == 'Z') {
				*ready = true;
				if (status)
					*status = d->zstatus;
				return i;
			}
		}
	}
	return i;
}

unsigned pqdigest_compare(const struct pqdigest_result *a, const struct pqdigest_result *b,
			  bool ordered, bool shape_only)
{
	unsigned diff = PQDIGEST_SAME;

	if (strcmp(a->sqlstate, b->sqlstate) != 0)
		diff |= PQDIGEST_ERROR;
	if (a->cols_hash != b->cols_hash)
		diff |= PQDIGEST_COLUMNS;
	if (shape_only || diff != PQDIGEST_SAME)
		return diff;
	if (a->rows != b->rows || a->suspended != b->suspended)
		diff |= PQDIGEST_ROWS;
	else if (a->set_hash != b->set_hash)
		diff |= PQDIGEST_DATA;
	else if (ordered && a->seq_hash != b->seq_hash)
		diff |= PQDIGEST_ORDER;
	return diff;
}

const char *pqdigest_diff_name(unsigned diff)
{
	if (diff & PQDIGEST_ERROR)
		return "error";
	if (diff & PQDIGEST_COLUMNS)
		return "columns";
	if (diff & PQDIGEST_ROWS)
		return "rows";
	if (diff & PQDIGEST_DATA)
		return "data";
	if (diff & PQDIGEST_ORDER)
		return "order";
	return "";
}

void pqdigest_summary(const struct pqdigest_result *r, char *buf, size_t len)
{
	if (len == 0)
		return;
	if (r->sqlstate[0]) {
		snprintf(buf, len, "ERROR %s: %s", r->sqlstate, r->error);
		return;
	}
	snprintf(buf, len, "%s%s%" PRIu64 " rows%s%s%s, hash %016" PRIx64, r->tag,
		 r->tag[0] ? ": " : "", r->rows, r->ncols ? " of (" : "", r->ncols ? r->cols : "",
		 r->ncols ? ")" : "", r->set_hash);
}
