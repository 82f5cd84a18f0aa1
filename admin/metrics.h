/*
 * metrics.h - Prometheus text-format metrics at http://metrics_addr:metrics_port/metrics,
 * served by libevent's evhttp on the loop.  The same counters feed SHOW STATS.
 */
#ifndef PGCUTOVER_METRICS_H
#define PGCUTOVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* Start the HTTP listener (nothing when metrics_port is 0); false with a message. */
bool metrics_start(char *errbuf, size_t errlen) __attribute__((warn_unused_result));
void metrics_stop(void);
/* Render every metric into 'out' (also used by tests through the endpoint). */
void metrics_render(struct evbuffer *out);

#endif /* PGCUTOVER_METRICS_H */
