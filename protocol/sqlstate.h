/*
 * sqlstate.h - the SQLSTATEs pgcutover sends or looks for, by name.
 *
 * The names are PostgreSQL's condition names (Appendix A of its manual),
 * upper-cased with a SQLSTATE_ prefix, so that a reader who knows the
 * server's errors recognises them.  Each is the five-character string that
 * goes into an ErrorResponse's 'C' field.
 */
#ifndef PGCUTOVER_SQLSTATE_H
#define PGCUTOVER_SQLSTATE_H

/* class 08: connection exception */
#define SQLSTATE_CONNECTION_FAILURE "08006"
#define SQLSTATE_PROTOCOL_VIOLATION "08P01"
/* class 0A: feature not supported */
#define SQLSTATE_FEATURE_NOT_SUPPORTED "0A000"
/* class 22: data exception */
#define SQLSTATE_INVALID_PARAMETER_VALUE "22023"
/* class 25: invalid transaction state */
#define SQLSTATE_READ_ONLY_SQL_TRANSACTION           "25006"
#define SQLSTATE_IDLE_IN_TRANSACTION_SESSION_TIMEOUT "25P03"
/* class 26 and 34: invalid statement or cursor name */
#define SQLSTATE_INVALID_SQL_STATEMENT_NAME "26000"
#define SQLSTATE_INVALID_CURSOR_NAME        "34000"
/* class 28: invalid authorization specification */
#define SQLSTATE_INVALID_AUTHORIZATION "28000"
#define SQLSTATE_INVALID_PASSWORD      "28P01"
/* class 3D: invalid catalog name (no such database) */
#define SQLSTATE_INVALID_CATALOG_NAME "3D000"
/* class 42: syntax error or access rule violation */
#define SQLSTATE_SYNTAX_ERROR                 "42601"
#define SQLSTATE_INSUFFICIENT_PRIVILEGE       "42501"
#define SQLSTATE_DUPLICATE_CURSOR             "42P03"
#define SQLSTATE_DUPLICATE_PREPARED_STATEMENT "42P05"
/* class 53: insufficient resources */
#define SQLSTATE_OUT_OF_MEMORY        "53200"
#define SQLSTATE_TOO_MANY_CONNECTIONS "53300"
/* class 54: program limit exceeded */
#define SQLSTATE_PROGRAM_LIMIT_EXCEEDED "54000"
/* class 55: object not in prerequisite state */
#define SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE "55000"
/* class 57: operator intervention */
#define SQLSTATE_QUERY_CANCELED "57014"
#define SQLSTATE_ADMIN_SHUTDOWN "57P01"
/* class 58: system error */
#define SQLSTATE_IO_ERROR "58030"
/* class F0: configuration file error */
#define SQLSTATE_CONFIG_FILE_ERROR "F0000"
/* class XX: internal error */
#define SQLSTATE_INTERNAL_ERROR "XX000"

#endif /* PGCUTOVER_SQLSTATE_H */
