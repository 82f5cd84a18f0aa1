/*
 * listener.h - listening sockets: TCP on a comma list of addresses (IPv4
 * and IPv6, "*" = every interface) and a unix socket.  What arrives is
 * handed to the hooks each listener was opened with; this module knows
 * nothing of what the connections are for.
 */
#ifndef PGCUTOVER_LISTENER_H
#define PGCUTOVER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct sockaddr;

/* Whom a listener reports to; arg is the one given when it was opened. */
struct listener_hooks {
	/* a connection was accepted: fd is non-blocking and now the callee's */
	void (*accept)(void *arg, int fd, const struct sockaddr *sa, int salen);
	/* accept() failed (EMFILE and the like); the listener goes on. May be NULL */
	void (*accept_failed)(void *arg, const char *why);
	/* a socket is listening on 'what' ("127.0.0.1:6432"), for the log. May be NULL */
	void (*opened)(void *arg, const char *what);
};

/*
 * Listen on every address of a comma list ("*" = all interfaces) on port.
 * Resolves names with getaddrinfo(): for start-up, before the loop runs.
 * False with a message in errbuf.
 */
bool listener_tcp(struct event_base *base, const char *list, int port,
		  const struct listener_hooks *hooks, void *arg, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));
/*
 * Listen on DIR/.s.PGSQL.<port>, as PostgreSQL names its socket (a stale
 * file from a previous run is replaced; the socket is mode 0777).
 */
bool listener_unix(struct event_base *base, const char *dir, int port,
		   const struct listener_hooks *hooks, void *arg, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));
/* Close every listener; removes the unix socket file. */
void listener_stop(void);

#endif /* PGCUTOVER_LISTENER_H */
