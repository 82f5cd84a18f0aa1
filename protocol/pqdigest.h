/*
 * pqdigest.h - a server's answers to one request, boiled down to what two
 * servers' answers are compared on (shadow reads): the SQLSTATE of the
 * first error, the names and types of the columns, the number of rows and
 * two hashes of them (one that ignores their order, one that does not).
 *
 * The digest reads a stream of backend messages as it comes, in pieces of
 * any size, and never holds a message: rows of any length are hashed as
 * they pass.  A request ends at its ReadyForQuery, where pqdigest_feed()
 * stops so that the caller can take that request's result.
 *
 * Type OIDs of PostgreSQL's own types (below 16384) are compared as they
 * are; those of types created in the database (enums, composite types,
 * extensions' types) differ from one server to the other by nature and are
 * compared as "a type of the database's own".
 *
 * Pure like the rest of protocol/.
 */
#ifndef PGCUTOVER_PQDIGEST_H
#define PGCUTOVER_PQDIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* OIDs from here on belong to objects created in the database (FirstNormalObjectId). */
#define PQDIGEST_FIRST_USER_OID 16384u

/* What one request's answers come to. */
struct pqdigest_result {
	char sqlstate[6];   /* of the first ErrorResponse; "" when none */
	char error[96];     /* its message, cut */
	uint64_t rows;      /* DataRows */
	uint64_t set_hash;  /* of the rows, whatever their order */
	uint64_t seq_hash;  /* of the rows in their order */
	uint64_t cols_hash; /* names and types of every RowDescription and ParameterDescription */
	uint32_t ncols;     /* columns of the first RowDescription */
	char cols[120];     /* the first RowDescription: "name oid, ..." cut */
	char tag[32];       /* the last CommandComplete tag */
	uint32_t suspended; /* PortalSuspended messages */
	bool malformed;     /* a message did not read as its type says */
};

/* How the answers to one request compare (bits). */
enum pqdigest_diff {
	PQDIGEST_SAME = 0,
	PQDIGEST_ERROR = 1 << 0,   /* one failed and the other did not, or other SQLSTATEs */
	PQDIGEST_COLUMNS = 1 << 1, /* column names or types */
	PQDIGEST_ROWS = 1 << 2,    /* number of rows */
	PQDIGEST_DATA = 1 << 3,    /* the rows themselves */
	PQDIGEST_ORDER = 1 << 4,   /* the same rows in another order (ordered statements) */
};

/* The streaming reader: where it is in the current message. */
struct pqdigest {
	uint32_t max_len; /* the longest message accepted (length word) */
	bool failed;      /* a length out of bounds: nothing more is read */
	uint8_t hdr[5];   /* the header being read */
	uint8_t hdr_have; /* bytes of it so far */
	uint8_t type;     /* the current message's type */
	uint32_t left;    /* bytes of its body still to come */
	/* per-type reading state */
	uint32_t field;             /* RowDescription: fields left; ErrorResponse: its field code */
	uint32_t pos;               /* bytes read of the current part */
	uint8_t part;               /* which part of the message is being read */
	uint8_t fixed[18];          /* a RowDescription field's fixed part, or counts */
	uint64_t h;                 /* running hash of the current part (row, name) */
	bool first_error;           /* this ErrorResponse is the request's first */
	bool first_cols;            /* this RowDescription is the request's first */
	char zstatus;               /* ReadyForQuery: its transaction status */
	size_t text_len;            /* bytes written to the text being filled */
	struct pqdigest_result cur; /* the request so far */
};

void pqdigest_init(struct pqdigest *d, uint32_t max_len);

/*
 * Read up to n bytes of the stream.  Stops right after a ReadyForQuery,
 * with *ready set and *status its transaction status ('I', 'T', 'E');
 * returns the bytes read.  After a length out of bounds d->failed is set and
 * nothing more is read (the return value is then what was read before it).
 */
size_t pqdigest_feed(struct pqdigest *d, const uint8_t *p, size_t n, bool *ready, char *status);

/* The request digested so far; the next one starts empty. */
void pqdigest_take(struct pqdigest *d, struct pqdigest_result *out);

/*
 * How b differs from a: PQDIGEST_* bits.  With ordered, rows in another
 * order differ (PQDIGEST_ORDER); with shape_only only errors and columns
 * are compared.
 */
unsigned pqdigest_compare(const struct pqdigest_result *a, const struct pqdigest_result *b,
			  bool ordered, bool shape_only);

/* The first difference's name: "error", "columns", "rows", "data", "order" ("" for none). */
const char *pqdigest_diff_name(unsigned diff);

/*
 * One line a person reads: "ERROR 42883: function f() does not exist", or
 * "SELECT 3: 3 rows of (id 23, name 25), hash 1f2e3d4c5b6a7988".
 */
void pqdigest_summary(const struct pqdigest_result *r, char *buf, size_t len);

#endif /* PGCUTOVER_PQDIGEST_H */
