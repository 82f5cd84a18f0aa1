/* version.h - the version pgcutover reports (--version, SHOW VERSION, server_version is the backend's). */
#ifndef PGCUTOVER_VERSION_H
#define PGCUTOVER_VERSION_H

#define PGCUTOVER_VERSION "0.1.0"

#endif /* PGCUTOVER_VERSION_H */
