/*
 * admin.c - the admin layer seen from the composition root (admin.h):
 * start-up, exit, and the admin console as the kind of client the admin
 * port accepts.  The console itself is console.c and the files console.h
 * lists.
 */
#include "admin/admin.h"

#include "admin/console.h"
#include "admin/cutover/cutover.h"
#include "admin/cutover/shadow_pos.h"
#include "admin/job.h"
#include "admin/validation.h"
#include "admin/show_control.h"
#include "proxy/client.h"
#include "proxy/core/list.h"
#include "proxy/runtime.h"

bool admin_init(char *errbuf, size_t errlen)
{
	cutover_init();
	shadow_pos_init();
	(void)errbuf;
	(void)errlen;
	return true;
}

void admin_shutdown(void)
{
	admin_validation_free();
	admin_jobs_shutdown();
	shadow_pos_shutdown();
	cutover_shutdown();
}

const struct client_kind *admin_client_kind(void)
{
	return &admin_console_kind;
}

void admin_close_all(void)
{
	struct list_node *n, *tmp;

	list_for_each_safe(n, tmp, &rt.kind_clients) {
		struct client *c = list_entry(n, struct client, node);

		if (c->kind == &admin_console_kind)
			client_close(c, "shutdown");
	}
}
