/*
 * userlist.h - the auth_file: user names and their secrets, in PgBouncer's
 * format, so that an existing userlist.txt works unchanged.
 *
 * Each line is "username" "secret" (further text is ignored); inside the
 * quotes "" stands for one quote.  Blank lines and lines starting with ';' or
 * '#' are comments.  Secrets are kept exactly as written: a plaintext
 * password, "md5" + 32 hex digits, or "SCRAM-SHA-256$<iter>:<salt>$<stored
 * key>:<server key>"; auth_secret_kind() tells them apart.  When a user is
 * listed twice the last line wins, as in PgBouncer.
 *
 * A userlist is immutable once loaded: a reload builds a new one and swaps
 * it whole, so lookups need no locking and never see a half-read file.
 */
#ifndef PGCUTOVER_USERLIST_H
#define PGCUTOVER_USERLIST_H

#include <stdbool.h>
#include <stddef.h>

struct userlist;

/*
 * Reads 'path'.  Returns a new userlist, or NULL with *errmsg set to a
 * malloc'd "path:line: message" (or "path: message" when the file cannot be
 * read) that the caller frees.
 */
struct userlist *userlist_load(const char *path, char **errmsg) __attribute__((warn_unused_result));

/* The secret of 'user', or NULL when the file does not list it. */
const char *userlist_secret(const struct userlist *ul, const char *user);

struct auth_scram_secret;

/*
 * The SCRAM secret to check 'user' against: parsed from a SCRAM-SHA-256$
 * entry, or derived from a plaintext password once and kept (false for an
 * md5 entry, an unknown user, or out of memory).
 */
bool userlist_scram_secret(struct userlist *ul, const char *user, struct auth_scram_secret *out)
	__attribute__((warn_unused_result));

/* How many distinct users the file lists. */
size_t userlist_count(const struct userlist *ul);
/* The i-th of them (in name order), or NULL past the end. */
const char *userlist_user(const struct userlist *ul, size_t i);

/* Frees 'ul' (NULL is allowed), wiping the secrets first. */
void userlist_free(struct userlist *ul);

#endif /* PGCUTOVER_USERLIST_H */
