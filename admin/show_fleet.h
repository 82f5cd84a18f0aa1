/*
 * show_fleet.h - SHOW FLEET (show_fleet.c): the instances of the fleet as
 * the fleet database knows them, and per instance the route and paused
 * state of each database it serves.  Internal to admin/.
 */
#ifndef PGCUTOVER_ADMIN_SHOW_FLEET_H
#define PGCUTOVER_ADMIN_SHOW_FLEET_H

#include <stdbool.h>

struct client;

void admin_show_fleet(struct client *c);

/* Its columns, for Describe. */
bool admin_show_fleet_columns(int *ncols, const char *const **cols);

#endif /* PGCUTOVER_ADMIN_SHOW_FLEET_H */
