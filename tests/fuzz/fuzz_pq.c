/*
 * fuzz_pq.c - fuzz target for protocol/pq (framing, the startup packet, the
 * cursor getters, ErrorResponse parsing) and protocol/pq_build (the message
 * builders).
 *
 * The first byte of the input chooses what the rest is:
 *
 *   bits 0-1  0: a client's byte stream: startup-phase packets (SSLRequest,
 *                GSSENCRequest, CancelRequest, StartupMessage), then typed
 *                frontend messages, as proxy/client.c reads them;
 *             1: a server's byte stream of typed backend messages, as
 *                proxy/server.c reads them;
 *             2: a script of cursor getters run over a message body;
 *             3: builder round trips: fields taken from the input are built
 *                into every kind of message and parsed back.
 *   bits 2-3  the max_len given to pq_read_header (small limits exercise
 *             PQ_ERR_LENGTH).
 *
 * Streams take a second byte that seeds the sizes of the chunks in which the
 * bytes "arrive": each stream is framed twice, once whole and once chunk by
 * chunk (PQ_NEED_MORE until enough has arrived), and both runs must frame
 * and parse the same messages.  Every call gets a buffer allocated to
 * exactly the length it is told about, so reading past it is caught.
 *
 * Every message body is read field by field with the layout the protocol
 * documents for its type, through wrappers that check each getter against
 * a reference (the value, how far the cursor moved, that a failure is
 * sticky), and the cursor must be consumed exactly when the layout fits.
 * Parsed messages that a pq_build_*() function can produce are rebuilt and
 * must come out byte for byte identical; the startup parameter list and the
 * ErrorResponse fields are also checked against small independent reference
 * parsers (differential checks).
 */
#include "tests/fuzz/fuzz.h"

#include "protocol/pq.h"
#include "protocol/pq_build.h"

/* Most messages one stream may hold before the target stops looking. */
#define FUZZ_MAX_EVENTS 1024

/* Most fields a builder round trip takes from the input. */
#define FUZZ_MAX_FIELDS 12

/* The max_len values bits 2-3 of the first byte choose between. */
static const uint32_t max_lens[4] = {0x3fffffff, 64, 5, 4};

static uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
	       (uint32_t)p[3];
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

/* ------------------------------------------------------------------ */
/* Checked cursor getters                                             */
/* ------------------------------------------------------------------ */

/*
 * Checks the cursor's own bookkeeping: a failed cursor reports nothing
 * left, a live one stays inside its body.
 */
static void ck_state(const struct pq_cursor *c, const uint8_t *start, const uint8_t *end)
{
	size_t left = pq_cursor_left(c);

	if (c->failed) {
		FUZZ_CHECK(left == 0);
		FUZZ_CHECK(!pq_cursor_done(c));
		return;
	}
	FUZZ_CHECK(c->end == end);
	if (c->p == NULL) {
		/* the empty body with no storage (pq_cursor_init(c, NULL, 0)) */
		FUZZ_CHECK(end == NULL && left == 0);
	} else {
		FUZZ_CHECK(c->p >= start && c->p <= end);
		FUZZ_CHECK(left == (size_t)(end - c->p));
	}
	FUZZ_CHECK(pq_cursor_done(c) == (left == 0));
}

/* A cursor over one body, with the bounds the checks compare against. */
struct ck {
	struct pq_cursor c;
	const uint8_t *start; /* first byte of the body */
	const uint8_t *end;   /* one past its last byte */
};

static void ck_init(struct ck *k, const uint8_t *body, size_t len)
{
	pq_cursor_init(&k->c, body, len);
	k->start = body;
	k->end = body ? body + len : NULL;
	FUZZ_CHECK(!k->c.failed);
	FUZZ_CHECK(pq_cursor_left(&k->c) == (body ? len : 0));
	ck_state(&k->c, k->start, k->end);
}

/* Whether n more bytes can be read, judged by the reference (not by pq). */
static bool ck_can(const struct ck *k, size_t n, const uint8_t **p0)
{
	*p0 = k->c.p;
	if (k->c.failed)
		return false;
	if (k->c.p == NULL)
		return n == 0;
	return (size_t)(k->end - k->c.p) >= n;
}

/* After a getter that should have failed: sticky failure, nothing left. */
static void ck_failed(const struct ck *k)
{
	FUZZ_CHECK(k->c.failed);
	ck_state(&k->c, k->start, k->end);
}

static uint8_t ck_u8(struct ck *k)
{
	const uint8_t *p0;
	bool can = ck_can(k, 1, &p0);
	uint8_t v = pq_get_u8(&k->c);

	if (can) {
		FUZZ_CHECK(!k->c.failed && k->c.p == p0 + 1 && v == p0[0]);
		ck_state(&k->c, k->start, k->end);
	} else {
		FUZZ_CHECK(v == 0);
		ck_failed(k);
	}
	return v;
}

static uint16_t ck_u16(struct ck *k)
{
	const uint8_t *p0;
	bool can = ck_can(k, 2, &p0);
	uint16_t v = pq_get_u16(&k->c);

	if (can) {
		FUZZ_CHECK(!k->c.failed && k->c.p == p0 + 2 && v == rd16(p0));
		ck_state(&k->c, k->start, k->end);
	} else {
		FUZZ_CHECK(v == 0);
		ck_failed(k);
	}
	return v;
}

static uint32_t ck_u32(struct ck *k)
{
	const uint8_t *p0;
	bool can = ck_can(k, 4, &p0);
	uint32_t v = pq_get_u32(&k->c);

	if (can) {
		FUZZ_CHECK(!k->c.failed && k->c.p == p0 + 4 && v == rd32(p0));
		ck_state(&k->c, k->start, k->end);
	} else {
		FUZZ_CHECK(v == 0);
		ck_failed(k);
	}
	return v;
}

/* The i32 getter must agree with a two's complement reading of the bytes. */
static int32_t ck_i32(struct ck *k)
{
	const uint8_t *p0;
	bool can = ck_can(k, 4, &p0);
	int32_t v = pq_get_i32(&k->c);

	if (can) {
		uint32_t u = rd32(p0);
		int64_t ref = u <= INT32_MAX ? (int64_t)u : (int64_t)u - 4294967296LL;

		FUZZ_CHECK(!k->c.failed && k->c.p == p0 + 4 && (int64_t)v == ref);
		ck_state(&k->c, k->start, k->end);
	} else {
		FUZZ_CHECK(v == 0);
		ck_failed(k);
	}
	return v;
}

/* A string: found only inside the body, "" (never NULL) on failure. */
static const char *ck_str(struct ck *k)
{
	const uint8_t *p0, *nul = NULL;
	bool can = ck_can(k, 1, &p0);
	const char *s;

	if (can)
		nul = memchr(p0, '\0', (size_t)(k->end - p0));
	s = pq_get_str(&k->c);
	FUZZ_CHECK(s != NULL);
	if (nul) {
		FUZZ_CHECK(!k->c.failed && s == (const char *)p0 && k->c.p == nul + 1);
		ck_state(&k->c, k->start, k->end);
	} else {
		FUZZ_CHECK(s[0] == '\0');
		ck_failed(k);
	}
	return s;
}

/* n raw bytes: the next n of the body, or NULL and failure; never NULL on success. */
static const uint8_t *ck_bytes(struct ck *k, size_t n)
{
	const uint8_t *p0;
	bool can = ck_can(k, n, &p0);
	const uint8_t *v = pq_get_bytes(&k->c, n);

	if (can) {
		FUZZ_CHECK(v != NULL && !k->c.failed);
		if (p0 != NULL)
			FUZZ_CHECK(v == p0 && k->c.p == p0 + n);
		ck_state(&k->c, k->start, k->end);
	} else {
		FUZZ_CHECK(v == NULL);
		ck_failed(k);
	}
	return v;
}

/* The rest of the body. */
static const uint8_t *ck_rest(struct ck *k, size_t *n)
{
	*n = pq_cursor_left(&k->c);
	return ck_bytes(k, *n);
}

/* pq_cursor_done must mean exactly: no failure and the body consumed. */
static bool ck_done(const struct ck *k)
{
	bool done = pq_cursor_done(&k->c);

	FUZZ_CHECK(done == (!k->c.failed && (k->c.p == k->end)));
	return done;
}

/* ------------------------------------------------------------------ */
/* Rebuilding                                                         */
/* ------------------------------------------------------------------ */

/*
 * A builder's output must be exactly the message it was fed: type byte,
 * length word, body.  'body' and 'len' are those of the parsed message.
 */
static void same_as_built(struct pq_buf *b, uint8_t type, const uint8_t *body, size_t len)
{
	FUZZ_CHECK(!b->failed);
	FUZZ_CHECK(b->len == 1 + 4 + len);
	FUZZ_CHECK(b->data[0] == type);
	FUZZ_CHECK(rd32(b->data + 1) == 4 + len);
	FUZZ_CHECK(len == 0 || memcmp(b->data + 5, body, len) == 0);
	pq_buf_free(b);
}

/* ------------------------------------------------------------------ */
/* ErrorResponse / NoticeResponse                                     */
/* ------------------------------------------------------------------ */

/* What the reference parser of an error body finds. */
struct ref_error {
	bool valid; /* the body has the layout: fields, then a final 0 byte */
	const char *severity, *sqlstate, *message, *detail, *hint; /* as pq_error_fields */
};

/*
 * Reference: (type != 0, string)* then a 0 byte that ends the body; the
 * last 'V' wins as severity, else the last 'S'; other fields: the last one.
 */
static void ref_parse_error(const uint8_t *body, size_t len, struct ref_error *r)
{
	const char *last_v = NULL, *last_s = NULL;
	size_t i = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		const uint8_t *nul;
		const char *s;
		uint8_t t;

		if (i >= len)
			return;
		t = body[i++];
		if (t == 0) {
			r->valid = i == len;
			r->severity = last_v ? last_v : last_s;
			return;
		}
		if (i >= len)
			return;
		nul = memchr(body + i, '\0', len - i);
		if (nul == NULL)
			return;
		s = (const char *)body + i;
		i = (size_t)(nul - body) + 1;
		switch (t) {
		case 'V':
			last_v = s;
			break;
		case 'S':
			last_s = s;
			break;
		case 'C':
			r->sqlstate = s;
			break;
		case 'M':
			r->message = s;
			break;
		case 'D':
			r->detail = s;
			break;
		case 'H':
			r->hint = s;
			break;
		default:
			break;
		}
	}
}

/* A field pointer must be NULL or a string that ends inside the body. */
static void field_inside(const char *f, const uint8_t *body, size_t len)
{
	const uint8_t *p = (const uint8_t *)f;

	if (f == NULL)
		return;
	FUZZ_CHECK(p >= body && p < body + len);
	FUZZ_CHECK(memchr(p, '\0', (size_t)(body + len - p)) != NULL);
}

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/*
 * pq_parse_error against the reference, then built again from what was
 * parsed and parsed once more: the same fields must come back.
 */
static enum pq_status check_error_body(uint8_t type, const uint8_t *body, size_t len)
{
	struct pq_error_fields f, g;
	struct ref_error r;
	enum pq_status st = pq_parse_error(body, len, &f);
	struct pq_buf b;

	FUZZ_CHECK(st == PQ_OK || st == PQ_ERR_FORMAT);
	ref_parse_error(body, len, &r);
	FUZZ_CHECK((st == PQ_OK) == r.valid);
	if (st != PQ_OK)
		return st;
	FUZZ_CHECK(f.severity == r.severity && f.sqlstate == r.sqlstate && f.message == r.message &&
		   f.detail == r.detail && f.hint == r.hint);
	field_inside(f.severity, body, len);
	field_inside(f.sqlstate, body, len);
	field_inside(f.message, body, len);
	field_inside(f.detail, body, len);
	field_inside(f.hint, body, len);

	pq_buf_init(&b);
	if (type == 'N')
		pq_build_notice(&b, f.severity, f.sqlstate, f.message, f.detail, f.hint);
	else
		pq_build_error(&b, f.severity, f.sqlstate, f.message, f.detail, f.hint);
	FUZZ_CHECK(!b.failed && b.len >= 5 && b.data[0] == (type == 'N' ? 'N' : 'E'));
	FUZZ_CHECK(rd32(b.data + 1) == b.len - 1);
	FUZZ_CHECK(pq_parse_error(b.data + 5, b.len - 5, &g) == PQ_OK);
	FUZZ_CHECK(str_eq(g.severity, f.severity) && str_eq(g.sqlstate, f.sqlstate) &&
		   str_eq(g.message, f.message));
	FUZZ_CHECK((g.detail == NULL) == (f.detail == NULL) && str_eq(g.detail, f.detail));
	FUZZ_CHECK((g.hint == NULL) == (f.hint == NULL) && str_eq(g.hint, f.hint));
	/* with its message replaced: every other field as it was, the new message */
	pq_buf_reset(&b);
	FUZZ_CHECK(pq_build_error_remessaged(&b, type, body, len, "replaced") == PQ_OK);
	FUZZ_CHECK(!b.failed && b.len >= 5 && b.data[0] == type && rd32(b.data + 1) == b.len - 1);
	FUZZ_CHECK(pq_parse_error(b.data + 5, b.len - 5, &g) == PQ_OK);
	FUZZ_CHECK(str_eq(g.severity, f.severity) && str_eq(g.sqlstate, f.sqlstate) &&
		   str_eq(g.detail, f.detail) && str_eq(g.hint, f.hint));
	FUZZ_CHECK((g.message == NULL) == (f.message == NULL));
	FUZZ_CHECK(f.message == NULL || strcmp(g.message, "replaced") == 0);
	pq_buf_free(&b);
	return st;
}

/* ------------------------------------------------------------------ */
/* Typed messages                                                     */
/* ------------------------------------------------------------------ */

/* An Authentication ('R') body, read the way proxy/server.c reads it. */
static bool check_auth(struct ck *k, const uint8_t *body, size_t len)
{
	uint32_t code = ck_u32(k);
	struct pq_buf b;
	size_t n;
	const uint8_t *d;

	switch (code) {
	case PQ_AUTH_OK:
	case PQ_AUTH_CLEARTEXT:
		break;
	case PQ_AUTH_MD5:
		(void)ck_bytes(k, 4);
		break;
	case PQ_AUTH_SASL: {
		const char *mechs[8];
		size_t nm = 0;
		bool terminated = false; /* the empty name that ends the list was read */

		while (pq_cursor_left(&k->c) > 0) {
			const char *m = ck_str(k);

			if (m[0] == '\0') {
				terminated = !k->c.failed;
				break;
			}
			if (nm < 7)
				mechs[nm] = m;
			nm++;
		}
		if (ck_done(k) && nm < 7 && terminated) {
			/* "R", code, the names, an empty name: what the builder writes */
			mechs[nm] = NULL;
			pq_buf_init(&b);
			pq_build_auth_sasl(&b, mechs);
			same_as_built(&b, 'R', body, len);
		}
		return ck_done(k);
	}
	case PQ_AUTH_SASL_CONTINUE:
	case PQ_AUTH_SASL_FINAL:
		d = ck_rest(k, &n);
		if (d) {
			pq_buf_init(&b);
			pq_build_auth(&b, code, d, n);
			same_as_built(&b, 'R', body, len);
		}
		break;
	default:
		break;
	}
	return ck_done(k);
}

/* RowDescription: n columns of name, table oid, attnum, type oid, typlen, typmod, format. */
static bool check_row_description(struct ck *k, const uint8_t *body, size_t len)
{
	uint16_t n = ck_u16(k);
	const char *names[64];
	bool plain = n <= 64; /* every column as pq_build_row_description makes it */

	for (uint16_t i = 0; i < n && !k->c.failed; i++) {
		const char *name = ck_str(k);
		uint32_t table = ck_u32(k);
		uint16_t attnum = ck_u16(k);
		uint32_t oid = ck_u32(k);
		uint16_t typlen = ck_u16(k);
		int32_t typmod = ck_i32(k);
		uint16_t format = ck_u16(k);

		if (i < 64)
			names[i] = name;
		if (table != 0 || attnum != 0 || oid != 25 || typlen != 0xffff || typmod != -1 ||
		    format != 0)
			plain = false;
	}
	if (ck_done(k) && plain) {
		struct pq_buf b;

		pq_buf_init(&b);
		pq_build_row_description(&b, n, names);
		same_as_built(&b, 'T', body, len);
	}
	return ck_done(k);
}

/*
 * DataRow: n values, each a length (-1 = NULL) and its bytes, read as
 * proxy/server.c's internal_add_row does for the first one.
 */
static bool check_data_row(struct ck *k, const uint8_t *body, size_t len)
{
	uint16_t n = ck_u16(k);
	char *values[16];
	bool plain = n <= 16; /* text values without NUL bytes: what the builder makes */
	uint16_t got = 0;

	for (uint16_t i = 0; i < n && !k->c.failed; i++) {
		int32_t vlen = ck_i32(k);
		const uint8_t *v = NULL;

		if (vlen >= 0) {
			v = ck_bytes(k, (size_t)vlen);
			if (v && memchr(v, '\0', (size_t)vlen))
				plain = false;
		} else if (vlen != -1) {
			plain = false;
		}
		if (i < 16 && plain && !k->c.failed) {
			values[i] = v ? fuzz_strndup(v, (size_t)vlen) : NULL;
			got = (uint16_t)(i + 1);
		}
	}
	if (ck_done(k) && plain && got == n) {
		struct pq_buf b;

		pq_buf_init(&b);
		pq_build_data_row(&b, n, (const char *const *)values);
		same_as_built(&b, 'D', body, len);
	}
	for (uint16_t i = 0; i < got; i++)
		free(values[i]);
	return ck_done(k);
}

/* NegotiateProtocolVersion: newest minor, then a count and that many option names. */
static bool check_negotiate(struct ck *k, const uint8_t *body, size_t len)
{
	uint32_t minor = ck_u32(k);
	int32_t n = ck_i32(k);
	const char *opts[16];

	if (n < 0)
		return false;
	for (int32_t i = 0; i < n && !k->c.failed; i++) {
		const char *o = ck_str(k);

		if (i < 16)
			opts[i] = o;
	}
	if (ck_done(k) && n <= 16) {
		struct pq_buf b;

		pq_buf_init(&b);
		pq_build_negotiate_version(&b, minor, n, opts);
		same_as_built(&b, 'v', body, len);
	}
	return ck_done(k);
}

/* A backend message body; true when it has its documented layout exactly. */
static bool check_backend_msg(uint8_t type, const uint8_t *body, size_t len)
{
	struct ck k;
	struct pq_buf b;

	ck_init(&k, body, len);
	pq_buf_init(&b);
	switch (type) {
	case 'R':
		return check_auth(&k, body, len);
	case 'S': { /* ParameterStatus, as server_take_param() reads it */
		const char *name = ck_str(&k), *value = ck_str(&k);

		if (!ck_done(&k))
			return false;
		pq_build_param_status(&b, name, value);
		same_as_built(&b, 'S', body, len);
		return true;
	}
	case 'K': { /* BackendKeyData */
		uint32_t pid = ck_u32(&k), key = ck_u32(&k);

		if (!ck_done(&k))
			return false;
		pq_build_backend_key(&b, pid, key);
		same_as_built(&b, 'K', body, len);
		return true;
	}
	case 'E':
	case 'N':
		return check_error_body(type, body, len) == PQ_OK;
	case 'Z': { /* ReadyForQuery */
		uint8_t st = ck_u8(&k);

		if (!ck_done(&k))
			return false;
		pq_build_ready(&b, (char)st);
		same_as_built(&b, 'Z', body, len);
		return true;
	}
	case 'T':
		return check_row_description(&k, body, len);
	case 'D':
		return check_data_row(&k, body, len);
	case 'C': { /* CommandComplete */
		const char *tag = ck_str(&k);

		if (!ck_done(&k))
			return false;
		pq_build_command_complete(&b, tag);
		same_as_built(&b, 'C', body, len);
		return true;
	}
	case 'I':
		if (!ck_done(&k))
			return false;
		pq_build_empty_query(&b);
		same_as_built(&b, 'I', body, len);
		return true;
	case 'v':
		return check_negotiate(&k, body, len);
	case 'A': /* NotificationResponse: pid, channel, payload */
		(void)ck_u32(&k);
		(void)ck_str(&k);
		(void)ck_str(&k);
		return ck_done(&k);
	case 'G':
	case 'H':
	case 'W': { /* Copy{In,Out,Both}Response: format, count, per-column formats */
		uint16_t n;

		(void)ck_u8(&k);
		n = ck_u16(&k);
		for (uint16_t i = 0; i < n && !k.c.failed; i++)
			(void)ck_u16(&k);
		return ck_done(&k);
	}
	case 't': { /* ParameterDescription */
		uint16_t n = ck_u16(&k);

		for (uint16_t i = 0; i < n && !k.c.failed; i++)
			(void)ck_u32(&k);
		return ck_done(&k);
	}
	case 'V': { /* FunctionCallResponse */
		int32_t n = ck_i32(&k);

		if (n >= 0)
			(void)ck_bytes(&k, (size_t)n);
		return ck_done(&k);
	}
	case 'd': {
		size_t n;

		(void)ck_rest(&k, &n);
		return ck_done(&k);
	}
	default: /* '1' '2' '3' 'n' 's' 'c' and unknown types: no body expected */
		return ck_done(&k);
	}
}

/*
 * A PasswordMessage-type ('p') body read all three ways proxy/client.c may,
 * depending on the authentication step, each rebuilt when it fits.
 */
static bool check_password_msg(const uint8_t *body, size_t len)
{
	struct ck k;
	struct pq_buf b;
	const char *s, *mech;
	const uint8_t *d;
	int32_t dlen;
	size_t n;
	bool any = false;

	/* PasswordMessage (cleartext or md5 response) */
	ck_init(&k, body, len);
	s = ck_str(&k);
	if (ck_done(&k)) {
		pq_buf_init(&b);
		pq_build_password(&b, s);
		same_as_built(&b, 'p', body, len);
		any = true;
	}

	/* SASLInitialResponse: mechanism, length (-1 = none), data */
	ck_init(&k, body, len);
	mech = ck_str(&k);
	dlen = ck_i32(&k);
	if (!k.c.failed && dlen >= 0 && (size_t)dlen == pq_cursor_left(&k.c)) {
		d = ck_bytes(&k, (size_t)dlen);
		FUZZ_CHECK(d != NULL && ck_done(&k));
		pq_buf_init(&b);
		pq_build_sasl_initial(&b, mech, d, (size_t)dlen);
		same_as_built(&b, 'p', body, len);
		any = true;
	} else if (!k.c.failed && dlen == -1 && ck_done(&k)) {
		pq_buf_init(&b);
		pq_build_sasl_initial(&b, mech, NULL, 0);
		same_as_built(&b, 'p', body, len);
		any = true;
	}

	/* SASLResponse: everything is data */
	ck_init(&k, body, len);
	d = ck_rest(&k, &n);
	FUZZ_CHECK(d != NULL && n == len && ck_done(&k));
	pq_buf_init(&b);
	pq_build_sasl_response(&b, d, n);
	same_as_built(&b, 'p', body, len);
	return any;
}

/* A frontend message body; true when it has its documented layout exactly. */
static bool check_frontend_msg(uint8_t type, const uint8_t *body, size_t len)
{
	struct ck k;
	struct pq_buf b;

	ck_init(&k, body, len);
	pq_buf_init(&b);
	switch (type) {
	case 'Q': { /* Query, as admin/console.c reads it */
		const char *q = ck_str(&k);

		if (!ck_done(&k))
			return false;
		pq_build_query(&b, q);
		same_as_built(&b, 'Q', body, len);
		return true;
	}
	case 'p':
		return check_password_msg(body, len);
	case 'P': { /* Parse: name, query, parameter types */
		uint16_t n;

		(void)ck_str(&k);
		(void)ck_str(&k);
		n = ck_u16(&k);
		for (uint16_t i = 0; i < n && !k.c.failed; i++)
			(void)ck_u32(&k);
		return ck_done(&k);
	}
	case 'B': { /* Bind: portal, statement, formats, values, result formats */
		uint16_t n;

		(void)ck_str(&k);
		(void)ck_str(&k);
		n = ck_u16(&k);
		for (uint16_t i = 0; i < n && !k.c.failed; i++)
			(void)ck_u16(&k);
		n = ck_u16(&k);
		for (uint16_t i = 0; i < n && !k.c.failed; i++) {
			int32_t vlen = ck_i32(&k);

			if (vlen >= 0)
				(void)ck_bytes(&k, (size_t)vlen);
		}
		n = ck_u16(&k);
		for (uint16_t i = 0; i < n && !k.c.failed; i++)
			(void)ck_u16(&k);
		return ck_done(&k);
	}
	case 'E': /* Execute: portal, row limit */
		(void)ck_str(&k);
		(void)ck_i32(&k);
		return ck_done(&k);
	case 'D': /* Describe and Close: 'S' or 'P', name */
	case 'C':
		(void)ck_u8(&k);
		(void)ck_str(&k);
		return ck_done(&k);
	case 'F': { /* FunctionCall: oid, formats, arguments, result format */
		uint16_t n;

		(void)ck_u32(&k);
		n = ck_u16(&k);
		for (uint16_t i = 0; i < n && !k.c.failed; i++)
			(void)ck_u16(&k);
		n = ck_u16(&k);
		for (uint16_t i = 0; i < n && !k.c.failed; i++) {
			int32_t vlen = ck_i32(&k);

			if (vlen >= 0)
				(void)ck_bytes(&k, (size_t)vlen);
		}
		(void)ck_u16(&k);
		return ck_done(&k);
	}
	case 'f': /* CopyFail */
		(void)ck_str(&k);
		return ck_done(&k);
	case 'd': {
		size_t n;

		(void)ck_rest(&k, &n);
		return ck_done(&k);
	}
	case 'X':
		if (!ck_done(&k))
			return false;
		pq_build_terminate(&b);
		same_as_built(&b, 'X', body, len);
		return true;
	default: /* 'S' 'H' 'c' and unknown types: no body expected */
		return ck_done(&k);
	}
}

/* ------------------------------------------------------------------ */
/* Startup packets                                                    */
/* ------------------------------------------------------------------ */

/* Reference: (non-empty string, string)* then one NUL that ends the list. */
static bool ref_startup_params(const uint8_t *p, size_t len, size_t *npairs)
{
	size_t i = 0;

	*npairs = 0;
	for (;;) {
		const uint8_t *nul;

		if (i >= len)
			return false;
		if (p[i] == '\0')
			return i + 1 == len;
		nul = memchr(p + i, '\0', len - i);
		if (nul == NULL)
			return false;
		i = (size_t)(nul - p) + 1;
		if (i >= len)
			return false; /* a name without its value */
		nul = memchr(p + i, '\0', len - i);
		if (nul == NULL)
			return false;
		i = (size_t)(nul - p) + 1;
		(*npairs)++;
	}
}

/* What the stream does after a startup-phase packet. */
enum next_phase {
	PHASE_STARTUP, /* another startup-phase packet (after SSLRequest, GSSENCRequest) */
	PHASE_TYPED,   /* typed messages (after a StartupMessage) */
	PHASE_STOP,    /* nothing more is read (CancelRequest, or an error) */
};

/*
 * A complete untyped packet of exactly 'len' bytes (its length word says so):
 * pq_parse_startup against the reference, the parameters walked with
 * pq_startup_next, and the packet rebuilt from them.
 */
static enum next_phase check_startup(const uint8_t *pkt, size_t len, enum pq_status *out_st)
{
	struct pq_startup su;
	enum pq_status st = pq_parse_startup(pkt, len, &su);
	uint32_t code = rd32(pkt + 4);
	bool special = code == PQ_SSL_REQUEST_CODE || code == PQ_GSSENC_REQUEST_CODE ||
		       code == PQ_CANCEL_REQUEST_CODE;
	size_t npairs = 0;
	bool ref_ok;

	*out_st = st;
	FUZZ_CHECK(su.code == code);

	/* a length word that disagrees with the length is never accepted */
	if (len > 8) {
		uint8_t *shorter = fuzz_dup_exact(pkt, len - 1);
		struct pq_startup su2;

		FUZZ_CHECK(pq_parse_startup(shorter, len - 1, &su2) != PQ_OK);
		free(shorter);
	}

	if (special) {
		size_t want = code == PQ_CANCEL_REQUEST_CODE ? 16 : 8;

		FUZZ_CHECK((st == PQ_OK) == (len == want));
		if (st != PQ_OK) {
			FUZZ_CHECK(st == PQ_ERR_FORMAT);
			return PHASE_STOP;
		}
		if (code != PQ_CANCEL_REQUEST_CODE)
			return PHASE_STARTUP;
		FUZZ_CHECK(su.cancel_pid == rd32(pkt + 8) && su.cancel_key == rd32(pkt + 12));
		{
			struct pq_buf b;

			pq_buf_init(&b);
			pq_build_cancel_request(&b, su.cancel_pid, su.cancel_key);
			FUZZ_CHECK(!b.failed && b.len == len && memcmp(b.data, pkt, len) == 0);
			pq_buf_free(&b);
		}
		return PHASE_STOP;
	}
	if (PQ_PROTOCOL_MAJOR(code) != 3) {
		FUZZ_CHECK(st == PQ_ERR_VERSION);
		return PHASE_STOP;
	}
	ref_ok = ref_startup_params(pkt + 8, len - 8, &npairs);
	FUZZ_CHECK((st == PQ_OK) == ref_ok);
	if (st != PQ_OK) {
		FUZZ_CHECK(st == PQ_ERR_FORMAT);
		return PHASE_STOP;
	}
	FUZZ_CHECK(su.params == pkt + 8 && su.params_len == len - 8);

	/* walk the pairs, then rebuild the packet from them */
	{
		const char **kv = malloc((2 * npairs + 1) * sizeof(*kv));
		const char *name, *value;
		struct ck k;
		size_t i = 0;
		struct pq_buf b;

		FUZZ_CHECK(kv != NULL);
		ck_init(&k, su.params, su.params_len);
		while (pq_startup_next(&k.c, &name, &value)) {
			FUZZ_CHECK(i < npairs);
			FUZZ_CHECK(name[0] != '\0');
			field_inside(name, su.params, su.params_len);
			field_inside(value, su.params, su.params_len);
			kv[2 * i] = name;
			kv[2 * i + 1] = value;
			i++;
		}
		FUZZ_CHECK(name == NULL && value == NULL);
		FUZZ_CHECK(i == npairs);
		FUZZ_CHECK(ck_done(&k)); /* the final NUL is the last byte */

		pq_buf_init(&b);
		pq_build_startup(&b, kv, npairs);
		FUZZ_CHECK(!b.failed && b.len == len);
		FUZZ_CHECK(rd32(b.data) == len && rd32(b.data + 4) == PQ_PROTOCOL(3, 0));
		FUZZ_CHECK(memcmp(b.data + 8, pkt + 8, len - 8) == 0);
		pq_buf_free(&b);
		free(kv);
	}
	return PHASE_TYPED;
}

/* ------------------------------------------------------------------ */
/* Streams                                                            */
/* ------------------------------------------------------------------ */

/* One thing that happened while framing a stream, to compare two runs. */
struct event {
	int kind;     /* 0 startup packet, 1 typed message, 2 framing error */
	int status;   /* the pq_status, or whether the body had its layout */
	uint8_t type; /* type byte (typed messages) */
	uint32_t len; /* declared length */
};

/* A stream framed as the proxy frames its input buffer. */
struct stream {
	const uint8_t *all;               /* every byte the peer will send */
	size_t total;                     /* how many */
	bool from_backend;                /* server side (typed messages from the start) */
	uint32_t max_len;                 /* pq_read_header's limit */
	struct event ev[FUZZ_MAX_EVENTS]; /* what the run saw, to compare with the other run */
	size_t nev;                       /* entries of ev used */
};

static void add_event(struct stream *s, int kind, int status, uint8_t type, uint32_t len)
{
	if (s->nev < FUZZ_MAX_EVENTS)
		s->ev[s->nev++] = (struct event){kind, status, type, len};
}

/*
 * Frames and checks the stream with the bytes arriving in chunks whose
 * sizes come from 'seed' (0 = all at once).  Each attempt sees only what
 * has arrived, in an exact-size copy, as a receive buffer would hold it.
 */
static void run_stream(struct stream *s, uint32_t seed)
{
	enum next_phase phase = s->from_backend ? PHASE_TYPED : PHASE_STARTUP;
	size_t arrived = 0, pos = 0;
	uint32_t rng = seed * 2654435761u + 1;

	s->nev = 0;
	while (phase != PHASE_STOP && s->nev < FUZZ_MAX_EVENTS) {
		size_t avail = arrived - pos, need;
		uint8_t *hdr;
		uint32_t len = 0;
		uint8_t type = 0;
		enum pq_status st;

		/* frame from at most 8 bytes: the header is all the framing may read */
		hdr = fuzz_dup_exact(s->all + pos, avail < 8 ? avail : 8);
		if (phase == PHASE_STARTUP) {
			st = pq_read_startup_len(hdr, avail < 8 ? avail : 8, &len);
			FUZZ_CHECK((avail < 4) == (st == PQ_NEED_MORE));
			need = len;
		} else {
			st = pq_read_header(hdr, avail < 8 ? avail : 8, &type, &len, s->max_len);
			FUZZ_CHECK((avail < PQ_HEADER_SIZE) == (st == PQ_NEED_MORE));
			need = (size_t)len + 1;
		}
		free(hdr);
		if (st == PQ_OK) {
			if (phase == PHASE_STARTUP)
				FUZZ_CHECK(len >= 8 && len <= PQ_STARTUP_MAX);
			else
				FUZZ_CHECK(len >= 4 && len <= s->max_len);
		} else if (st != PQ_NEED_MORE) {
			FUZZ_CHECK(st == PQ_ERR_LENGTH);
			if (phase == PHASE_STARTUP)
				FUZZ_CHECK(len < 8 || len > PQ_STARTUP_MAX);
			else
				FUZZ_CHECK(len < 4 || len > s->max_len);
			add_event(s, 2, st, type, len);
			return;
		}

		if (st == PQ_NEED_MORE || avail < need) {
			size_t chunk;

			if (arrived == s->total)
				return; /* the peer sent no more: a partial message stays unread */
			if (seed == 0) {
				chunk = s->total - arrived;
			} else {
				rng = rng * 1103515245u + 12345u;
				chunk = 1 + (rng >> 16) % (1 + (seed & 0x3f));
			}
			arrived += chunk < s->total - arrived ? chunk : s->total - arrived;
			continue;
		}

		{
			uint8_t *msg = fuzz_dup_exact(s->all + pos, need);
			enum pq_status pst;
			bool ok;

			if (phase == PHASE_STARTUP) {
				phase = check_startup(msg, need, &pst);
				add_event(s, 0, pst, 0, len);
			} else {
				/* the body alone, in an exact block of its own */
				uint8_t *body = fuzz_dup_exact(msg + PQ_HEADER_SIZE, len - 4);
				const char *name = pq_msg_name(type, s->from_backend);

				FUZZ_CHECK(name != NULL && name[0] != '\0');
				ok = s->from_backend ? check_backend_msg(type, body, len - 4)
						     : check_frontend_msg(type, body, len - 4);
				add_event(s, 1, ok, type, len);
				free(body);
			}
			free(msg);
			pos += need;
		}
	}
}

/* The stream whole and in chunks: the same messages, the same verdicts. */
static void fuzz_stream(const uint8_t *data, size_t size, bool from_backend, uint32_t max_len)
{
	static struct stream whole, chunked;
	uint32_t seed;

	if (size < 1)
		return;
	seed = data[0];
	whole.all = chunked.all = data + 1;
	whole.total = chunked.total = size - 1;
	whole.from_backend = chunked.from_backend = from_backend;
	whole.max_len = chunked.max_len = max_len;
	run_stream(&whole, 0);
	run_stream(&chunked, seed ? seed : 1);
	FUZZ_CHECK(whole.nev == chunked.nev);
	for (size_t i = 0; i < whole.nev; i++) {
		const struct event *a = &whole.ev[i], *b = &chunked.ev[i];

		FUZZ_CHECK(a->kind == b->kind && a->status == b->status && a->type == b->type &&
			   a->len == b->len);
	}
}

/* ------------------------------------------------------------------ */
/* Cursor scripts                                                     */
/* ------------------------------------------------------------------ */

/*
 * data = [number of ops] [ops...] [body]: each op runs one getter; bytes()
 * takes its count from the next op byte.  Also checks the empty cursor.
 */
static void fuzz_cursor(const uint8_t *data, size_t size)
{
	size_t nops, i = 1;
	uint8_t *body;
	const uint8_t *ops;
	struct ck k;

	/* an empty body with no storage behind it: nothing to read, yet done */
	ck_init(&k, NULL, 0);
	FUZZ_CHECK(ck_done(&k));
	FUZZ_CHECK(ck_bytes(&k, 0) != NULL && ck_done(&k));
	(void)ck_u8(&k);
	FUZZ_CHECK(!ck_done(&k));

	if (size < 1)
		return;
	nops = data[0];
	if (nops > size - 1)
		nops = size - 1;
	ops = data + 1;
	body = fuzz_dup_exact(data + 1 + nops, size - 1 - nops);
	ck_init(&k, body, size - 1 - nops);
	for (i = 0; i < nops; i++) {
		switch (ops[i] % 8) {
		case 0:
			(void)ck_u8(&k);
			break;
		case 1:
			(void)ck_u16(&k);
			break;
		case 2:
			(void)ck_u32(&k);
			break;
		case 3:
			(void)ck_i32(&k);
			break;
		case 4:
			(void)ck_str(&k);
			break;
		case 5:
			(void)ck_bytes(&k, i + 1 < nops ? ops[++i] : 0);
			break;
		case 6: {
			size_t n;

			(void)ck_rest(&k, &n);
			break;
		}
		default:
			(void)ck_done(&k);
			break;
		}
	}
	(void)ck_done(&k);
	free(body);
}

/* ------------------------------------------------------------------ */
/* Builder round trips                                                */
/* ------------------------------------------------------------------ */

/* Frames the next message of a built buffer, which must frame exactly. */
static const uint8_t *next_built(const struct pq_buf *b, size_t *pos, uint8_t want_type,
				 size_t *body_len)
{
	uint8_t type;
	uint32_t len;

	FUZZ_CHECK(pq_read_header(b->data + *pos, b->len - *pos, &type, &len, UINT32_MAX) == PQ_OK);
	FUZZ_CHECK(type == want_type);
	FUZZ_CHECK((size_t)len + 1 <= b->len - *pos);
	*body_len = len - 4;
	*pos += (size_t)len + 1;
	return b->data + *pos - *body_len;
}

/*
 * data = [flags] [NUL-separated fields]: every builder is fed the fields,
 * all messages go into one buffer, and each is framed and parsed back.
 */
static void fuzz_builders(const uint8_t *data, size_t size)
{
	const char *f[FUZZ_MAX_FIELDS];
	char *copy;
	size_t nf = 0, pos = 0, blen, i;
	uint8_t flags;
	struct pq_buf b;
	const uint8_t *body;
	struct pq_error_fields e;
	struct ck k;

	if (size < 1)
		return;
	flags = data[0];
	copy = fuzz_strndup(data + 1, size - 1);
	for (i = 0; i < size - 1 && nf < FUZZ_MAX_FIELDS;) {
		f[nf++] = copy + i;
		i += strlen(copy + i) + 1;
	}
	for (i = nf; i < FUZZ_MAX_FIELDS; i++)
		f[i] = "";

	pq_buf_init(&b);
	/* 1: error, 2: notice */
	pq_build_error(&b, f[0], f[1], f[2], (flags & 1) ? f[3] : NULL, (flags & 2) ? f[4] : NULL);
	pq_build_notice(&b, f[1], f[2], f[3], (flags & 4) ? f[4] : NULL, NULL);
	/* 3: ParameterStatus, 4: Query, 5: CommandComplete, 6: password */
	pq_build_param_status(&b, f[0], f[1]);
	pq_build_query(&b, f[2]);
	pq_build_command_complete(&b, f[3]);
	pq_build_password(&b, f[4]);
	/* 7: RowDescription, 8: DataRow (a field is NULL where its flag bit says so) */
	pq_build_row_description(&b, (int)nf, f);
	{
		const char *vals[FUZZ_MAX_FIELDS];

		for (i = 0; i < nf; i++)
			vals[i] = (flags >> (i % 8)) & 1 ? NULL : f[i];
		pq_build_data_row(&b, (int)nf, vals);
	}
	/* 9: SASLInitialResponse, 10: SASLResponse, 11: AuthenticationSASL */
	pq_build_sasl_initial(&b, f[0], (flags & 8) ? NULL : f[1], strlen(f[1]));
	pq_build_sasl_response(&b, f[2], strlen(f[2]));
	{
		const char *mechs[FUZZ_MAX_FIELDS + 1];
		size_t nm = 0;

		for (i = 0; i < nf && f[i][0] != '\0'; i++)
			mechs[nm++] = f[i];
		mechs[nm] = NULL;
		pq_build_auth_sasl(&b, mechs);
	}
	/* 12: ReadyForQuery, 13: BackendKeyData, 14: Terminate, 15: EmptyQueryResponse */
	pq_build_ready(&b, (char)flags);
	pq_build_backend_key(&b, (uint32_t)size, (uint32_t)flags * 16777619u);
	pq_build_terminate(&b);
	pq_build_empty_query(&b);
	/* 16: NegotiateProtocolVersion */
	pq_build_negotiate_version(&b, flags, (int)nf, f);
	FUZZ_CHECK(!b.failed);

	/* and now parse them all back, in order */
	body = next_built(&b, &pos, 'E', &blen);
	FUZZ_CHECK(pq_parse_error(body, blen, &e) == PQ_OK);
	FUZZ_CHECK(str_eq(e.severity, f[0]) && str_eq(e.sqlstate, f[1]) && str_eq(e.message, f[2]));
	FUZZ_CHECK((e.detail != NULL) == ((flags & 1) != 0) &&
		   str_eq(e.detail, (flags & 1) ? f[3] : NULL));
	FUZZ_CHECK((e.hint != NULL) == ((flags & 2) != 0) &&
		   str_eq(e.hint, (flags & 2) ? f[4] : NULL));
	body = next_built(&b, &pos, 'N', &blen);
	FUZZ_CHECK(pq_parse_error(body, blen, &e) == PQ_OK);
	FUZZ_CHECK(str_eq(e.severity, f[1]) && str_eq(e.sqlstate, f[2]) && str_eq(e.message, f[3]));
	FUZZ_CHECK((e.detail != NULL) == ((flags & 4) != 0) && e.hint == NULL);

	body = next_built(&b, &pos, 'S', &blen);
	ck_init(&k, body, blen);
	FUZZ_CHECK(strcmp(ck_str(&k), f[0]) == 0 && strcmp(ck_str(&k), f[1]) == 0 && ck_done(&k));
	body = next_built(&b, &pos, 'Q', &blen);
	ck_init(&k, body, blen);
	FUZZ_CHECK(strcmp(ck_str(&k), f[2]) == 0 && ck_done(&k));
	body = next_built(&b, &pos, 'C', &blen);
	ck_init(&k, body, blen);
	FUZZ_CHECK(strcmp(ck_str(&k), f[3]) == 0 && ck_done(&k));
	body = next_built(&b, &pos, 'p', &blen);
	ck_init(&k, body, blen);
	FUZZ_CHECK(strcmp(ck_str(&k), f[4]) == 0 && ck_done(&k));

	body = next_built(&b, &pos, 'T', &blen);
	ck_init(&k, body, blen);
	FUZZ_CHECK(check_row_description(&k, body, blen));
	body = next_built(&b, &pos, 'D', &blen);
	ck_init(&k, body, blen);
	FUZZ_CHECK(check_data_row(&k, body, blen));

	body = next_built(&b, &pos, 'p', &blen);
	ck_init(&k, body, blen);
	FUZZ_CHECK(strcmp(ck_str(&k), f[0]) == 0);
	if (flags & 8) {
		FUZZ_CHECK(ck_i32(&k) == -1);
	} else {
		size_t n = strlen(f[1]);

		FUZZ_CHECK((size_t)ck_i32(&k) == n);
		FUZZ_CHECK(n == 0 || memcmp(ck_bytes(&k, n), f[1], n) == 0);
	}
	FUZZ_CHECK(ck_done(&k));
	body = next_built(&b, &pos, 'p', &blen);
	FUZZ_CHECK(blen == strlen(f[2]) && memcmp(body, f[2], blen) == 0);
	body = next_built(&b, &pos, 'R', &blen);
	ck_init(&k, body, blen);
	FUZZ_CHECK(check_auth(&k, body, blen));

	body = next_built(&b, &pos, 'Z', &blen);
	FUZZ_CHECK(blen == 1 && body[0] == flags);
	body = next_built(&b, &pos, 'K', &blen);
	FUZZ_CHECK(blen == 8 && rd32(body) == (uint32_t)size);
	body = next_built(&b, &pos, 'X', &blen);
	FUZZ_CHECK(blen == 0);
	body = next_built(&b, &pos, 'I', &blen);
	FUZZ_CHECK(blen == 0);
	body = next_built(&b, &pos, 'v', &blen);
	ck_init(&k, body, blen);
	FUZZ_CHECK(check_negotiate(&k, body, blen));
	FUZZ_CHECK(pos == b.len);

	/* a StartupMessage of the non-empty pairs parses back to them */
	{
		const char *kv[FUZZ_MAX_FIELDS];
		size_t np = 0;
		struct pq_startup su;
		const char *name, *value;

		for (i = 0; i + 1 < nf; i += 2) {
			if (f[i][0] == '\0')
				continue;
			kv[2 * np] = f[i];
			kv[2 * np + 1] = f[i + 1];
			np++;
		}
		pq_buf_reset(&b);
		FUZZ_CHECK(b.len == 0 && !b.failed);
		pq_build_startup(&b, kv, np);
		FUZZ_CHECK(!b.failed);
		if (b.len <= PQ_STARTUP_MAX) {
			uint32_t len;

			FUZZ_CHECK(pq_read_startup_len(b.data, b.len, &len) == PQ_OK &&
				   len == b.len);
			FUZZ_CHECK(pq_parse_startup(b.data, b.len, &su) == PQ_OK);
			FUZZ_CHECK(su.code == PQ_PROTOCOL(3, 0));
			ck_init(&k, su.params, su.params_len);
			for (i = 0; pq_startup_next(&k.c, &name, &value); i++) {
				FUZZ_CHECK(i < np && strcmp(name, kv[2 * i]) == 0 &&
					   strcmp(value, kv[2 * i + 1]) == 0);
			}
			FUZZ_CHECK(i == np && ck_done(&k));
		}
	}

	/* misuse fails the buffer instead of sending a wrong message; reset clears it */
	pq_buf_reset(&b);
	pq_build_row_description(&b, -1, f);
	FUZZ_CHECK(b.failed);
	pq_put_u32(&b, 1);
	FUZZ_CHECK(b.failed && b.len == 0);
	pq_buf_reset(&b);
	pq_build_negotiate_version(&b, 0, -1, f);
	FUZZ_CHECK(b.failed);
	pq_buf_reset(&b);
	pq_msg_begin(&b, 'Q');
	pq_buf_reset(&b);
	pq_msg_end(&b); /* the length word is gone: the buffer must fail, not patch */
	FUZZ_CHECK(b.failed);
	pq_buf_free(&b);
	pq_buf_free(&b);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_stream(data + 1, size - 1, false, max_lens[(data[0] >> 2) & 3]);
		break;
	case 1:
		fuzz_stream(data + 1, size - 1, true, max_lens[(data[0] >> 2) & 3]);
		break;
	case 2:
		fuzz_cursor(data + 1, size - 1);
		break;
	default:
		fuzz_builders(data + 1, size - 1);
		break;
	}
	for (int t = 0; t < 256; t++) {
		FUZZ_CHECK(pq_msg_name((uint8_t)t, true) != NULL);
		FUZZ_CHECK(pq_msg_name((uint8_t)t, false) != NULL);
	}
	return 0;
}
