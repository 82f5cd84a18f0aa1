/*
 * notify.c - sd_notify(3) messages to the service manager (see notify.h).
 *
 * libsystemd does the work: it reads NOTIFY_SOCKET and sends one datagram
 * per call.  The environment is left as it is (unset_environment = 0)
 * because messages go on being sent for the life of the process.
 */
#include "proxy/core/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "proxy/core/log.h"

/* The last STATUS= text sent, so that an unchanged status is not sent again. */
static char last_status[256];

bool notify_enabled(void)
{
	const char *s = getenv("NOTIFY_SOCKET");

	return s != NULL && s[0] != '\0';
}

/* Sends 'state' when a service manager listens; a failure is only logged. */
static void send_state(const char *state)
{
	static bool failed_before;
	int rc;

	if (!notify_enabled())
		return;
	rc = sd_notify(0, state);
	if (rc < 0 && !failed_before) {
		failed_before = true;
		log_debug("could not notify the service manager: %s", strerror(-rc));
	}
}

void notify_ready(const char *status)
{
	char msg[300];

	if (status == NULL) {
		send_state("READY=1");
		return;
	}
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	snprintf(last_status, sizeof(last_status), "%s", status);
	send_state(msg);
}

void notify_reloading(void)
{
	struct timespec ts;
	char msg[80];

	/* systemd 253 and later want the reload's start on CLOCK_MONOTONIC beside it */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull +
			 (unsigned long long)ts.tv_nsec / 1000u);
	send_state(msg);
}

void notify_stopping(void)
{
	send_state("STOPPING=1");
}

void notify_status(const char *status)
{
	char msg[300];

	if (!notify_enabled() || strcmp(status, last_status) == 0)
		return;
	snprintf(last_status, sizeof(last_status), "%s", status);
	snprintf(msg, sizeof(msg), "STATUS=%s", last_status);
	send_state(msg);
}
