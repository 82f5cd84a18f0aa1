/*
 * fuzz.h - what every fuzz target in tests/fuzz/ shares.
 *
 * Each fuzz_*.c defines LLVMFuzzerTestOneInput().  It is linked either with
 * libFuzzer (make fuzz: clang -fsanitize=fuzzer, build-fuzz/) or with
 * replay_main.c (make fuzz-replay: the build's own compiler and flags), which
 * feeds it every file of the target's seeds/ and regressions/.  So the
 * targets use nothing but C11 and the code under test, and an invariant
 * violation is an abort(), which both drivers report as a failure.
 *
 * See docs/fuzzing.md for what each target covers.
 */
#ifndef PGCUTOVER_FUZZ_H
#define PGCUTOVER_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The libFuzzer entry points; replay_main.c calls the same ones. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * An invariant of the code under test does not hold: say which and abort,
 * so that libFuzzer keeps the input as a crash and the replay fails.
 */
#define FUZZ_CHECK(cond)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n",     \
				__FILE__, __LINE__, #cond);                            \
			abort();                                                      \
		}                                                                     \
	} while (0)

/*
 * A copy of n bytes in a block of exactly n bytes and no terminator, so that
 * AddressSanitizer catches a parser reading even one byte past its length
 * (the fuzzer's own buffer may be followed by readable memory).
 */
static inline uint8_t *fuzz_dup_exact(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	FUZZ_CHECK(d != NULL);
	if (n)
		memcpy(d, p, n);
	return d;
}

/* A NUL-terminated copy of n bytes (embedded NULs are kept, so strlen may be shorter). */
static inline char *fuzz_strndup(const void *p, size_t n)
{
	char *d = malloc(n + 1);

	FUZZ_CHECK(d != NULL);
	if (n)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

/*
 * Puts data into an in-memory file and sets 'path' to a name that opens it
 * (/proc/self/fd/N), for loaders that only take a path (config_load,
 * userlist_load).  The same memfd is reused for every input, so fuzzing
 * writes nothing to disk and leaks no descriptor.
 */
static inline bool fuzz_memfile(const void *data, size_t n, char path[64])
{
	static int fd = -1;
	const uint8_t *p = data;
	size_t off = 0;

	if (fd < 0) {
		fd = memfd_create("pgcutover-fuzz", MFD_CLOEXEC);
		if (fd < 0)
			return false;
	}
	if (ftruncate(fd, 0) != 0)
		return false;
	while (off < n) {
		ssize_t w = pwrite(fd, p + off, n - off, (off_t)off);

		if (w <= 0)
			return false;
		off += (size_t)w;
	}
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return true;
}

/*
 * Splits [*p, end) at the next 'sep' byte: sets *piece and *len to what comes
 * before it and moves *p past it.  False when nothing is left.  The targets
 * that take several messages per input separate them with '\n', which keeps
 * the seed files readable.
 */
static inline bool fuzz_next_piece(const uint8_t **p, const uint8_t *end, uint8_t sep,
				   const uint8_t **piece, size_t *len)
{
	const uint8_t *s;

	if (*p == NULL || *p >= end)
		return false;
	s = memchr(*p, sep, (size_t)(end - *p));
	*piece = *p;
	if (s == NULL) {
		*len = (size_t)(end - *p);
		*p = end;
	} else {
		*len = (size_t)(s - *p);
		*p = s + 1;
	}
	return true;
}

#endif /* PGCUTOVER_FUZZ_H */
