/*
 * commands.c - the admin console's commands (see commands.h): admin_run()
 * hands a parsed command to its handler.  The views are in show.c and
 * show_control.c; the commands that drive the switch engine (PAUSE,
 * RESUME, SWITCH, ABORT) and the process (RELOAD, SHUTDOWN) are here, with
 * the callbacks through which the engine answers PAUSE and SWITCH later.
 */
#include "admin/commands.h"

#include "admin/console.h"
#include "admin/cutover/cutover.h"
#include "admin/resultset.h"
#include "admin/show.h"
#include "admin/show_control.h"
#include "admin/show_fleet.h"
#include "admin/validation.h"
#include "admin/show_replication.h"
#include "admin/show_shadow.h"
#include "protocol/sqlstate.h"
#include "proxy/client.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* ---- the engine's answers ---- */

/* PAUSE has drained (cutover_paused_fn). */
static void admin_paused(void *who, const char *sqlstate, const char *message)
{
	struct client *c = who;

	if (sqlstate)
		admin_reply_error(c, sqlstate, message, NULL);
	else {
		admin_send_tag(c, "PAUSE");
		admin_done(c);
	}
}

/* A SWITCH ended (cutover_reply_fn): its row, or the error. */
static void admin_switched(void *who, const struct switch_record *rec, const char *sqlstate)
{
	struct client *c = who;
	struct admin_rs rs;

	if (sqlstate) {
		admin_reply_error(c, sqlstate, rec->error,
				  "SHOW SWITCHES has the timings; the database stays on its old side");
		return;
	}
	admin_switch_begin(&rs);
	admin_switch_row(&rs, rec);
	admin_rs_send(c, &rs);
	/* a DRY RUN answers with its checks too (a second result set: simple protocol only) */
	if (rec->dry_run)
		admin_checks_rows(c, rec->db);
	admin_done(c);
}

/* FENCE, UNFENCE or FINISH is done (cutover_done_fn): its tag, or the error. */
static void admin_background_done(void *who, const char *sqlstate, const char *message)
{
	struct client *c = who;

	if (sqlstate)
		admin_reply_error(c, sqlstate, message, NULL);
	else {
		admin_send_tag(c, message);
		admin_done(c);
	}
}

/* ---- PAUSE, RESUME, SWITCH, ABORT ---- */

/* The database an argument names; on error the reply is sent and NULL returned. */
static struct database *need_db(struct client *c, const char *name)
{
	struct database *db = db_find(name);

	if (db == NULL)
		admin_send_no_db(c, name);
	return db;
}

/* PAUSE [db]: answered by admin_paused() once in-flight transactions are over. */
static void do_pause(struct client *c, const char *name)
{
	struct database *db = NULL;

	if (name[0] && (db = need_db(c, name)) == NULL)
		return;
	log_info("admin %s: PAUSE %s", c->addr, name[0] ? name : "(all)");
	admin_set_busy(c, true);
	cutover_pause(db, admin_paused, c);
}

static void do_resume(struct client *c, const char *name)
{
	struct database *db = NULL;

	if (name[0] && (db = need_db(c, name)) == NULL)
		return;
	log_info("admin %s: RESUME %s", c->addr, name[0] ? name : "(all)");
	cutover_resume(db);
	admin_send_tag(c, "RESUME");
}

/* SWITCH db [TO side] [DRY RUN]: answered by admin_switched() when the switch ends. */
static void do_switch(struct client *c, const struct admin_cmd *cmd)
{
	struct database *db = need_db(c, cmd->db);
	char err[300];

	if (db == NULL)
		return;
	log_info("admin %s: SWITCH %s TO %s%s%s", c->addr, db->name,
		 cmd->to_source ? "source" : "target", cmd->dry_run ? " DRY RUN" : "",
		 cmd->force ? " FORCE" : "");
	admin_set_busy(c, true);
	if (!cutover_start(db, cmd->to_source ? SIDE_SOURCE : SIDE_TARGET, cmd->dry_run, cmd->force,
			   admin_switched, c, err, sizeof(err))) {
		admin_set_busy(c, false);
		admin_send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, err,
				 "SHOW DATABASES and SHOW SWITCHES show where each database is");
	}
}

static void do_abort(struct client *c, const char *name)
{
	struct database *db = need_db(c, name);
	char err[300];

	if (db == NULL)
		return;
	log_info("admin %s: ABORT %s", c->addr, db->name);
	if (cutover_abort(db, err, sizeof(err)))
		admin_send_tag(c, "ABORT");
	else
		admin_send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, err,
				 "ABORT stops a switch before its flip (preflight, drain, lag wait, sequence sync)");
}

/* FENCE db side / UNFENCE db side: answered once the statement ran on that side. */
static void do_fence(struct client *c, const struct admin_cmd *cmd, bool on)
{
	struct database *db = need_db(c, cmd->db);
	enum route_side side = cmd->to_source ? SIDE_SOURCE : SIDE_TARGET;
	char err[400];

	if (db == NULL)
		return;
	log_info("admin %s: %s %s %s", c->addr, on ? "FENCE" : "UNFENCE", db->name,
		 route_side_name(side));
	admin_set_busy(c, true);
	if (!cutover_fence(db, side, on, admin_background_done, c, err, sizeof(err))) {
		admin_set_busy(c, false);
		admin_send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, err,
				 "a switch fences the side it leaves and lifts the fence of the side it goes to itself");
	}
}

/* FINISH db: answered once the way back's objects are dropped. */
static void do_finish(struct client *c, const char *name)
{
	struct database *db = need_db(c, name);
	char err[400];

	if (db == NULL)
		return;
	log_info("admin %s: FINISH %s", c->addr, db->name);
	admin_set_busy(c, true);
	if (!cutover_finish_reverse(db, admin_background_done, c, err, sizeof(err))) {
		admin_set_busy(c, false);
		admin_send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, err,
				 "SHOW DATABASES shows where each database is routed");
	}
}

/* ---- dispatch ---- */

void admin_run(struct client *c, const char *query, size_t len)
{
	struct admin_cmd cmd;
	char err[1200];

	if (!admin_cmd_parse(query, len, &cmd, err, sizeof(err))) {
		admin_send_error(c, SQLSTATE_SYNTAX_ERROR, err, "SHOW HELP lists the commands");
		return;
	}
	switch (cmd.kind) {
	case ADMIN_CMD_EMPTY:
		admin_send_empty(c);
		break;
	case ADMIN_CMD_SHOW_HELP:
		admin_show_help(c);
		break;
	case ADMIN_CMD_SHOW_VERSION:
		admin_show_version(c);
		break;
	case ADMIN_CMD_SHOW_DATABASES:
		admin_show_databases(c);
		break;
	case ADMIN_CMD_SHOW_CLIENTS:
		admin_show_clients(c);
		break;
	case ADMIN_CMD_SHOW_SERVERS:
		admin_show_servers(c);
		break;
	case ADMIN_CMD_SHOW_POOLS:
		admin_show_pools(c);
		break;
	case ADMIN_CMD_SHOW_STATS:
		admin_show_stats(c);
		break;
	case ADMIN_CMD_SHOW_LISTS:
		admin_show_lists(c);
		break;
	case ADMIN_CMD_SHOW_CONFIG:
		admin_show_config(c);
		break;
	case ADMIN_CMD_RELOAD:
		log_info("admin %s: RELOAD", c->addr);
		switch (rt_reload(err, sizeof(err))) {
		case RT_RELOAD_OK:
			admin_send_tag(c, "RELOAD");
			break;
		case RT_RELOAD_PARTIAL:
			admin_send_error(c, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE, err,
					 "a switch works on the settings it started with: run RELOAD again once it has ended (SHOW SWITCHES)");
			break;
		case RT_RELOAD_FAILED:
			admin_send_error(c, SQLSTATE_CONFIG_FILE_ERROR, err,
					 "fix the configuration file and run RELOAD again");
			break;
		}
		break;
	case ADMIN_CMD_SHUTDOWN:
		log_info("admin %s: SHUTDOWN", c->addr);
		admin_send_tag(c, "SHUTDOWN");
		rt_begin_shutdown();
		break;
	case ADMIN_CMD_KILL:
		admin_kill(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_SWITCHES:
		admin_show_switches(c);
		break;
	case ADMIN_CMD_SHOW_LAG:
		admin_show_lag(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_SEQUENCES:
		admin_show_sequences(c, cmd.db);
		break;
	case ADMIN_CMD_PAUSE:
		do_pause(c, cmd.db);
		break;
	case ADMIN_CMD_RESUME:
		do_resume(c, cmd.db);
		break;
	case ADMIN_CMD_SWITCH:
		do_switch(c, &cmd);
		break;
	case ADMIN_CMD_ABORT:
		do_abort(c, cmd.db);
		break;
	case ADMIN_CMD_FENCE:
	case ADMIN_CMD_UNFENCE:
		do_fence(c, &cmd, cmd.kind == ADMIN_CMD_FENCE);
		break;
	case ADMIN_CMD_FINISH:
		do_finish(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_REPLICATION:
		admin_show_replication(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_SHADOW:
		admin_show_shadow(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_SHADOW_DIFFS:
		admin_show_shadow_diffs(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_DDL:
		admin_show_ddl(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_FLEET:
		admin_show_fleet(c);
		break;
	case ADMIN_CMD_CHECK:
		admin_check(c, &cmd);
		break;
	case ADMIN_CMD_VERIFY:
	case ADMIN_CMD_VERIFY_STOP:
		admin_verify(c, &cmd);
		break;
	case ADMIN_CMD_SHOW_VERIFY:
		admin_show_verify(c, cmd.db);
		break;
	case ADMIN_CMD_SHOW_VERIFY_DIFFS:
		admin_show_verify_diffs(c, cmd.db);
		break;
	}
}

bool admin_command_columns(enum admin_cmd_kind kind, int *ncols, const char *const **cols)
{
	return admin_show_columns(kind, ncols, cols) ||
	       admin_show_control_columns(kind, ncols, cols) ||
	       (kind == ADMIN_CMD_SHOW_REPLICATION && admin_show_replication_columns(ncols, cols)) ||
	       (kind == ADMIN_CMD_SHOW_FLEET && admin_show_fleet_columns(ncols, cols)) ||
	       admin_show_shadow_columns(kind, ncols, cols) ||
	       admin_validation_columns(kind, ncols, cols);
}
