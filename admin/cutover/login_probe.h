/*
 * login_probe.h - one real login to a database side as a user, with the
 * secret pgcutover holds for it, exactly as its own server connections log
 * in (login_probe.c): for CHECK's login check.
 *
 * The probe connects (host names through evdns, TLS as the side's sslmode
 * or server_tls_sslmode says), sends a StartupMessage for the user and the
 * side's database, answers the server's authentication request (cleartext,
 * md5, SCRAM-SHA-256) and ends at the first ReadyForQuery with a Terminate.
 * With a SCRAM secret and no ClientKey (no client of that user has logged in
 * with SCRAM yet) no proof can be sent: the probe then stops after the
 * server's first message and says whether the server's salt and iteration
 * count are the secret's (a verifier copied with a different salt, or a
 * role that does not exist, whose salt PostgreSQL makes up, shows there).
 *
 * Nothing blocks the loop; the callback comes exactly once, from the loop,
 * never from inside login_probe_start(), unless the probe is cancelled.
 */
#ifndef PGCUTOVER_LOGIN_PROBE_H
#define PGCUTOVER_LOGIN_PROBE_H

#include <stdbool.h>
#include <stdint.h>

struct backend_addr;

/* How a probe ended. */
enum login_probe_outcome {
	PROBE_LOGGED_IN,     /* the server let the user in */
	PROBE_SALT_MATCHES,  /* SCRAM without a ClientKey: the server's salt and iterations are
				the secret's (as far as a login can go without a client's proof) */
	PROBE_SALT_DIFFERS,  /* ... they are not: this secret cannot log in there */
	PROBE_REFUSED,       /* the server refused (ErrorResponse): sqlstate and message */
	PROBE_CANNOT_ANSWER, /* pgcutover holds no secret that answers the server's request */
	PROBE_FAILED,        /* connecting, TLS, a malformed answer or the time limit */
};

struct login_probe_result {
	enum login_probe_outcome outcome;
	char sqlstate[6]; /* PROBE_REFUSED: the server's; else "" */
	char message[300];
};

typedef void (*login_probe_cb)(void *arg, const struct login_probe_result *r);

struct login_probe;

/*
 * Log in to the server at 'a' (its host, port and sslmode; dbname names the
 * database) as 'user' with 'secret' (plaintext, md5... or SCRAM-SHA-256$...;
 * NULL when auth_file has none).  client_key: the SCRAM ClientKey a client's
 * own login recovered for that user (NULL when none).  Bounded by timeout_ms.
 * NULL when out of memory (cb will not be called).
 */
struct login_probe *login_probe_start(const struct backend_addr *a, const char *dbname,
				      const char *user, const char *secret,
				      const uint8_t *client_key, int64_t timeout_ms,
				      login_probe_cb cb, void *arg);

/* Stop a probe; its callback will not be called.  Safe inside any callback. */
void login_probe_cancel(struct login_probe *p);

#endif /* PGCUTOVER_LOGIN_PROBE_H */
