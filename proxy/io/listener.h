/*
 * listener.h - the listening sockets: TCP on listen_addr:listen_port (IPv4 and
 * IPv6, comma lists, "*"), the optional unix socket, and the admin port.
 */
#ifndef PGCUTOVER_LISTENER_H
#define PGCUTOVER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

/* Open every listener of rt.cfg; false with a message in errbuf. */
bool listener_start(char *errbuf, size_t errlen) __attribute__((warn_unused_result));
/* Stop accepting (SIGTERM) and close every listener; removes the unix socket file. */
void listener_stop(void);

#endif /* PGCUTOVER_LISTENER_H */
