/*
 * server_login.h - a server connection's way in: connect, TLS, startup and
 * authentication (server_login.c).
 */
#ifndef PGCUTOVER_SERVER_LOGIN_H
#define PGCUTOVER_SERVER_LOGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/io/sock.h"
#include "proxy/io/sock_tls.h"
#include "proxy/io/tls.h"

struct backend_addr;
struct server;
struct sockaddr_un;

/* SSLRequest: length 8, code 1234.5679. */
extern const uint8_t server_ssl_request[8];

/* Start connecting a new server (SV_CONNECT) to the address it was opened for. */
void server_connect(struct server *s);
/* A socket event (connected, TLS ready, error or EOF) before the login is over. */
void server_login_event(struct server *s, int what);
/* server_connect_timeout expired before the login was over. */
void server_login_timeout(struct server *s);
/* Bytes arrived in SV_CONNECT after an SSLRequest: the one-byte answer. */
void server_handle_tls_answer(struct server *s);
/* Bytes arrived in SV_LOGIN: the authentication exchange and the welcome. */
void server_handle_login(struct server *s);

/*
 * The TLS mode towards one side of a database: its conninfo's sslmode, else
 * server_tls_sslmode.  *name says which, for messages.  "allow" is taken as
 * "prefer" (TLS is asked for first); a unix socket never uses TLS (as libpq).
 */
enum tls_sslmode server_side_sslmode(const struct backend_addr *a, const char **name);
/* What a TLS mode asks of the server's certificate. */
enum sock_tls_verify server_sslmode_verify(enum tls_sslmode m);
/* The sockaddr of a unix-socket backend: DIR/.s.PGSQL.PORT; false when too long. */
bool server_unix_addr(const struct backend_addr *a, struct sockaddr_un *sun)
	__attribute__((warn_unused_result));

#endif /* PGCUTOVER_SERVER_LOGIN_H */
