/*
 * fuzz_digest.c - fuzz target for the digest of a server's answers
 * (protocol/pqdigest.c), which reads the bytes a source or a target server
 * sends back for shadow reads.
 *
 * The input is a backend byte stream, with its first byte a seed for the
 * sizes of the pieces it is fed in.  Invariants: the stream digested whole
 * and digested in pieces gives the same results, request by request (the
 * same ReadyForQuery boundaries, statuses, hashes, counts and texts); every
 * text is terminated; a bad length stops both runs at the same byte; a
 * result compares equal to itself, and the summary line is terminated.
 */
#include "tests/fuzz/fuzz.h"

#include "protocol/pqdigest.h"

/* At most this many requests are compared per input. */
#define MAX_REQUESTS 64

struct run {
	struct pqdigest_result res[MAX_REQUESTS];
	char status[MAX_REQUESTS];
	size_t nres;
	size_t consumed;
	bool failed;
};

static void check_result(const struct pqdigest_result *r)
{
	char line[256];

	FUZZ_CHECK(memchr(r->sqlstate, '\0', sizeof(r->sqlstate)) != NULL);
	FUZZ_CHECK(memchr(r->error, '\0', sizeof(r->error)) != NULL);
	FUZZ_CHECK(memchr(r->cols, '\0', sizeof(r->cols)) != NULL);
	FUZZ_CHECK(memchr(r->tag, '\0', sizeof(r->tag)) != NULL);
	FUZZ_CHECK(pqdigest_compare(r, r, true, false) == PQDIGEST_SAME);
	pqdigest_summary(r, line, sizeof(line));
	FUZZ_CHECK(memchr(line, '\0', sizeof(line)) != NULL);
}

static void digest(const uint8_t *p, size_t n, uint32_t seed, struct run *out)
{
	struct pqdigest d;
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	pqdigest_init(&d, 1u << 16);
	while (off < n && !d.failed) {
		size_t piece = n - off;
		bool ready = false;
		char status = 0;
		size_t used;

		if (seed) {
			seed = seed * 1103515245u + 12345u;
			piece = 1 + (seed >> 16) % 7;
			if (piece > n - off)
				piece = n - off;
		}
		used = pqdigest_feed(&d, p + off, piece, &ready, &status);
		FUZZ_CHECK(used <= piece);
		off += used;
		if (ready) {
			FUZZ_CHECK(out->nres < MAX_REQUESTS);
			pqdigest_take(&d, &out->res[out->nres]);
			out->status[out->nres] = status;
			check_result(&out->res[out->nres]);
			out->nres++;
			if (out->nres == MAX_REQUESTS)
				break;
		} else if (!d.failed) {
			FUZZ_CHECK(used == piece);
		}
	}
	out->consumed = off;
	out->failed = d.failed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, pieces;
	uint8_t *stream;

	if (size < 1)
		return 0;
	stream = fuzz_dup_exact(data + 1, size - 1);
	digest(stream, size - 1, 0, &whole);
	digest(stream, size - 1, (uint32_t)data[0] + 1, &pieces);
	FUZZ_CHECK(whole.nres == pieces.nres);
	FUZZ_CHECK(whole.failed == pieces.failed);
	FUZZ_CHECK(whole.consumed == pieces.consumed);
	for (size_t i = 0; i < whole.nres; i++) {
		FUZZ_CHECK(whole.status[i] == pieces.status[i]);
		FUZZ_CHECK(memcmp(&whole.res[i], &pieces.res[i], sizeof(whole.res[i])) == 0);
	}
	free(stream);
	return 0;
}
