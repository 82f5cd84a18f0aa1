/*
 * hash.h - the one string hash of the intern tables (parameter lists,
 * statement texts, statement names): FNV-1a, 64 bits.  The keys are short
 * and come from trusted bookkeeping, not from an attacker choosing bucket
 * collisions at volume (a client only ever fills its own map), so a simple
 * fast hash is the right one.
 */
#ifndef PGCUTOVER_HASH_H
#define PGCUTOVER_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#endif /* PGCUTOVER_HASH_H */
