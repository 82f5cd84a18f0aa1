/*
 * resultset.c - the admin console's output: result sets, command tags,
 * errors, and the filter every reply passes while an Execute runs (see
 * resultset.h).
 */
#include "admin/resultset.h"

#include <stdio.h>

#include "admin/console.h"
#include "protocol/pq.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"

/*
 * Every reply of the console goes through here.  While an Execute runs, the
 * command's RowDescription is dropped (the extended protocol sends it at
 * Describe, never at Execute), and an ErrorResponse starts the state that
 * ignores messages until Sync.  The buffers are our own, well formed.
 */
bool admin_send(struct client *c, const uint8_t *data, size_t len)
{
	struct admin_session *a = c->kind_data;
	size_t off = 0, keep = 0;

	if (a == NULL || !a->ext.exec)
		return client_send(c, data, len);
	while (off + PQ_HEADER_SIZE <= len) {
		uint8_t type = data[off];
		uint32_t mlen = (uint32_t)data[off + 1] << 24 | (uint32_t)data[off + 2] << 16 |
				(uint32_t)data[off + 3] << 8 | data[off + 4];

		if (type == 'E')
			a->ext.skip = true;
		if (type == 'T') {
			if (off > keep && !client_send(c, data + keep, off - keep))
				return false;
			keep = off + 1 + mlen;
		}
		off += 1 + (size_t)mlen;
	}
	return keep >= len || client_send(c, data + keep, len - keep);
}

void admin_send_buf(struct client *c, struct pq_buf *b)
{
	if (b->failed || !admin_send(c, b->data, b->len))
		client_close(c, "could not send");
	pq_buf_free(b);
}

void admin_rs_begin(struct admin_rs *rs, int ncols, const char *const *names)
{
	pq_buf_init(&rs->b);
	rs->ncols = ncols;
	rs->nrows = 0;
	pq_build_row_description(&rs->b, ncols, names);
}

void admin_rs_row(struct admin_rs *rs, const char *const *values)
{
	pq_build_data_row(&rs->b, rs->ncols, values);
	rs->nrows++;
}

void admin_rs_send(struct client *c, struct admin_rs *rs)
{
	pq_build_command_complete(&rs->b, "SHOW");
	admin_send_buf(c, &rs->b);
}

void admin_rs_free(struct admin_rs *rs)
{
	pq_buf_free(&rs->b);
}

void admin_send_tag(struct client *c, const char *tag)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_command_complete(&b, tag);
	admin_send_buf(c, &b);
}

void admin_send_error(struct client *c, const char *sqlstate, const char *msg, const char *hint)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_error(&b, "ERROR", sqlstate, msg, NULL, hint);
	admin_send_buf(c, &b);
}

void admin_send_no_db(struct client *c, const char *name)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "database \"%s\" does not exist", name);
	admin_send_error(c, SQLSTATE_INVALID_CATALOG_NAME, msg,
			 "SHOW DATABASES lists the databases");
}

void admin_send_ready(struct client *c)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_ready(&b, 'I');
	admin_send_buf(c, &b);
}

void admin_send_empty(struct client *c)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_build_empty_query(&b);
	admin_send_buf(c, &b);
}

void admin_send_bare(struct client *c, uint8_t type)
{
	struct pq_buf b;

	pq_buf_init(&b);
	pq_msg_begin(&b, type);
	pq_msg_end(&b);
	admin_send_buf(c, &b);
}
