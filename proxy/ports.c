/*
 * ports.c - the proxy's listening ports, from the configuration (see ports.h).
 */
#include "proxy/ports.h"

#include "proxy/client.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/io/listener.h"
#include "proxy/runtime.h"

static void ports_accept(void *arg, int fd, const struct sockaddr *sa, int salen)
{
	(void)salen;
	client_accept(arg, fd, sa);
}

static void ports_accept_failed(void *arg, const char *why)
{
	(void)arg;
	log_warning("could not accept a connection: %s", why);
}

static void ports_opened(void *arg, const char *what)
{
	const struct client_kind *kind = arg;

	log_info("listening on %s%s%s%s", what, kind ? " (" : "", kind ? kind->name : "",
		 kind ? ")" : "");
}

static const struct listener_hooks ports_hooks = {
	.accept = ports_accept,
	.accept_failed = ports_accept_failed,
	.opened = ports_opened,
};

bool ports_start(const struct client_kind *console, char *errbuf, size_t errlen)
{
	const struct config *cfg = rt.cfg;

	if (!listener_tcp(rt.base, cfg->listen_addr, cfg->listen_port, &ports_hooks, NULL, errbuf,
			  errlen))
		return false;
	if (cfg->unix_socket_dir && cfg->unix_socket_dir[0] &&
	    !listener_unix(rt.base, cfg->unix_socket_dir, cfg->listen_port, &ports_hooks, NULL,
			   errbuf, errlen))
		return false;
	if (console && cfg->admin_port > 0 &&
	    !listener_tcp(rt.base, cfg->admin_addr, cfg->admin_port, &ports_hooks, (void *)console,
			  errbuf, errlen))
		return false;
	return true;
}

void ports_stop(void)
{
	listener_stop();
}
