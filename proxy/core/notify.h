/*
 * notify.h - telling the service manager where pgcutover is in its life,
 * through sd_notify(3): the unit is Type=notify (dist/systemd/).
 *
 *   READY=1       once every listener is open (start-up), and after a reload
 *   RELOADING=1   when a reload (SIGHUP, RELOAD) begins
 *   STOPPING=1    when a shutdown (SIGTERM, SHUTDOWN, SIGINT) begins
 *   STATUS=...    a line `systemctl status` shows: clients, switches
 *
 * Started by anything but systemd (no NOTIFY_SOCKET in the environment),
 * every call returns at once and sends nothing.  A message that cannot be
 * sent is logged once at DEBUG and otherwise ignored: the proxy never stops
 * for its service manager.
 */
#ifndef PGCUTOVER_NOTIFY_H
#define PGCUTOVER_NOTIFY_H

#include <stdbool.h>

/* True when a service manager listens (NOTIFY_SOCKET is set). */
bool notify_enabled(void);
/* READY=1, with a first status line (may be NULL). */
void notify_ready(const char *status);
/* RELOADING=1 (with the monotonic time newer systemd wants beside it). */
void notify_reloading(void);
/* STOPPING=1. */
void notify_stopping(void);
/* STATUS=status, sent only when it differs from the last one sent. */
void notify_status(const char *status);

#endif /* PGCUTOVER_NOTIFY_H */
