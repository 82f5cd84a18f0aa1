/*
 * listener.c - listening sockets, through libevent's evconnlistener (see
 * listener.h).
 *
 * Addresses are resolved once at start-up, before the loop runs, so no
 * lookup ever blocks it.
 */
#include "proxy/io/listener.h"

#include <errno.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTENER_MAX   32
#define LISTEN_BACKLOG 1024

/* One listening socket and whom it reports to. */
struct listener {
	struct evconnlistener *l;
	const struct listener_hooks *hooks;
	void *arg;
};

static struct listener listeners[LISTENER_MAX];
static int nlisteners;
static char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct listener *ls = arg;

	(void)l;
	ls->hooks->accept(ls->arg, fd, sa, salen);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct listener *ls = arg;

	(void)l;
	/* EMFILE and friends: keep listening, the next accept may succeed */
	if (ls->hooks->accept_failed)
		ls->hooks->accept_failed(ls->arg,
					 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static bool add_listener(struct event_base *base, const struct sockaddr *sa, socklen_t len,
			 const struct listener_hooks *hooks, void *arg, const char *what,
			 char *errbuf, size_t errlen)
{
	struct listener *ls;
	struct evconnlistener *l;
	evutil_socket_t fd;
	int on = 1;

	if (nlisteners == LISTENER_MAX) {
		snprintf(errbuf, errlen, "too many listen addresses");
		return false;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(errbuf, errlen, "could not create a socket for %s: %s", what,
			 strerror(errno));
		return false;
	}
	if (sa->sa_family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, sa, len) != 0) {
		snprintf(errbuf, errlen, "could not listen on %s: %s", what, strerror(errno));
		close(fd);
		return false;
	}
	ls = &listeners[nlisteners];
	ls->hooks = hooks;
	ls->arg = arg;
	l = evconnlistener_new(base, accept_cb, ls, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
			       LISTEN_BACKLOG, fd);
	if (l == NULL) {
		snprintf(errbuf, errlen, "could not listen on %s: %s", what, strerror(errno));
		close(fd);
		return false;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	ls->l = l;
	nlisteners++;
	if (hooks->opened)
		hooks->opened(arg, what);
	return true;
}

bool listener_tcp(struct event_base *base, const char *list, int port,
		  const struct listener_hooks *hooks, void *arg, char *errbuf, size_t errlen)
{
	char *copy = strdup(list), *save = NULL, *tok;
	bool ok = true;

	if (copy == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	for (tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
		struct addrinfo hints, *res = NULL, *ai;
		char portstr[16], what[300];
		int rc;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		for (char *e = tok + strlen(tok); e > tok && (e[-1] == ' ' || e[-1] == '\t');)
			*--e = '\0';
		if (*tok == '\0')
			continue;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		snprintf(portstr, sizeof(portstr), "%d", port);
		/* start-up only, before the loop runs */
		rc = getaddrinfo(strcmp(tok, "*") == 0 ? NULL : tok, portstr, &hints, &res);
		if (rc != 0) {
			snprintf(errbuf, errlen, "could not resolve listen address \"%s\": %s", tok,
				 gai_strerror(rc));
			ok = false;
			break;
		}
		for (ai = res; ai && ok; ai = ai->ai_next) {
			snprintf(what, sizeof(what), "%s%s%s:%d",
				 ai->ai_family == AF_INET6 ? "[" : "",
				 strcmp(tok, "*") == 0
					 ? (ai->ai_family == AF_INET6 ? "::" : "0.0.0.0")
					 : tok,
				 ai->ai_family == AF_INET6 ? "]" : "", port);
			ok = add_listener(base, ai->ai_addr, ai->ai_addrlen, hooks, arg, what,
					  errbuf, errlen);
		}
		freeaddrinfo(res);
	}
	free(copy);
	return ok;
}

bool listener_unix(struct event_base *base, const char *dir, int port,
		   const struct listener_hooks *hooks, void *arg, char *errbuf, size_t errlen)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", dir, port) >=
	    (int)sizeof(sun.sun_path)) {
		snprintf(errbuf, errlen, "unix_socket_dir \"%s\" is too long", dir);
		return false;
	}
	/* a socket file left by a previous run that died */
	unlink(sun.sun_path);
	if (!add_listener(base, (struct sockaddr *)&sun, sizeof(sun), hooks, arg, sun.sun_path,
			  errbuf, errlen))
		return false;
	chmod(sun.sun_path, 0777);
	snprintf(unix_path, sizeof(unix_path), "%s", sun.sun_path);
	return true;
}

void listener_stop(void)
{
	for (int i = 0; i < nlisteners; i++)
		evconnlistener_free(listeners[i].l);
	nlisteners = 0;
	if (unix_path[0]) {
		unlink(unix_path);
		unix_path[0] = '\0';
	}
}
