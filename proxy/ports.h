/*
 * ports.h - the proxy's listening ports, from the configuration: the client
 * port on listen_addr:listen_port, the optional unix socket in
 * unix_socket_dir, and the admin port on admin_addr:admin_port, whose
 * connections are clients of the kind the admin console registered.
 */
#ifndef PGCUTOVER_PORTS_H
#define PGCUTOVER_PORTS_H

#include <stdbool.h>
#include <stddef.h>

struct client_kind;

/*
 * Open every port of rt.cfg; 'console' is the kind of client the admin port
 * accepts (NULL: no admin port).  A reload does not re-bind: a changed
 * address needs a restart.  False with a message in errbuf.
 */
bool ports_start(const struct client_kind *console, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));
/* Stop accepting (SIGTERM, exit); removes the unix socket file. */
void ports_stop(void);

#endif /* PGCUTOVER_PORTS_H */
