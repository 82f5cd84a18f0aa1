/*
 * shadow_pos.h - the position poller of shadow reads (shadow_pos.c): while
 * a database has samples waiting for its target to catch up, it reads,
 * over control connections, the source's position and how far the target
 * has applied it, and tells proxy/shadow (shadow_position()).
 */
#ifndef PGCUTOVER_SHADOW_POS_H
#define PGCUTOVER_SHADOW_POS_H

/* Register with proxy/shadow (at start-up). */
void shadow_pos_init(void);
/* Close every poller (exit; the databases may already be gone). */
void shadow_pos_shutdown(void);

#endif /* PGCUTOVER_SHADOW_POS_H */
